"""Compose: from a campaign spec and mailing lists to one finished email per segment.

Data enters the pipeline here. ``spec`` reads and checks the campaign YAML, ``audience``
reads the mailing lists and sorts readers into segments, ``menu`` decides which courses each
segment sees, and ``render`` turns the course-menu template into HTML and text with tokens
where readers differ. Nothing in this package touches the store or the network.
"""
