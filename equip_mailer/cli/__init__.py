"""The ``equip-mailer`` command: thin click commands over the library, one module per
command group.

Every expected failure is an EquipError, printed as one plain sentence (plus a hint), never
a traceback. Real work lives in the pipeline's packages; each command imports what it needs
when it runs, so ``equip-mailer --help`` stays fast.

To add a command: write it in its group's module (or a new ``cli/<group>.py``) as
``@main.command()`` over ``@friendly_errors``, with an ``Example:`` in its help; import a new
module below (importing it is what registers its commands); add the command to README.md and
to tests/cli/test_docs.py, which checks both.
"""

# The command modules, imported for their @main.command() registrations.
from equip_mailer.cli import (  # noqa: F401
    check,
    people,
    preview,
    reporting,
    rosters,
    sending,
    serve,
    signups,
    status,
    suppressions,
)
from equip_mailer.cli.common import main

__all__ = ["main"]
