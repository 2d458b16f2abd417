"""Compose: from a campaign spec and mailing lists to one finished email per segment.

Data enters the pipeline here. ``spec`` reads the campaign YAML into the models of
``campaign`` (a course and its sessions in ``courses``, the shared field types in
``spec_fields``); ``list_files`` reads the mailing lists, ``cell_values`` normalises what their
cells say and ``audience`` turns the rows into readers per segment; ``menu`` decides which
courses each segment sees, and ``render`` turns the course-menu template into HTML and text
with tokens where readers differ. Nothing in this package touches the store or the network.
"""
