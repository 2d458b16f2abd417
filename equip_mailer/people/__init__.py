"""People: what the training does to a person's QI level, and what the store holds about them.

- ``attendance``: ``record_attendance`` (the command and the team's roster page both call it)
  and what completing a course means;
- ``sheets``: reading a completed sign-in sheet (the roster's own file, or addresses per
  session) into marks, naming each bad row;
- ``levels``: the recorded QI level history (course completed, by hand) and the wording of
  who moved;
- ``records``: what check and send learn from the store about the people on a list (the
  higher level, who was erased).
"""
