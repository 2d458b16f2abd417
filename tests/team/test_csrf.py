"""CSRF tokens: bound to one session (or pre-session cookie), useless anywhere else."""

from equip_mailer.team import csrf

KEY = b"k" * 32


def test_a_token_is_valid_only_for_its_binding():
    token = csrf.token(KEY, "session-a")
    assert csrf.valid(KEY, "session-a", token)
    assert not csrf.valid(KEY, "session-b", token)
    assert not csrf.valid(b"other key" * 4, "session-a", token)
    assert not csrf.valid(KEY, "session-a", token[:-1])
    assert not csrf.valid(KEY, None, token)
    assert not csrf.valid(KEY, "session-a", None)
    assert not csrf.valid(KEY, "session-a", "")
