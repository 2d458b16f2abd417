"""What every command shares, seen from the person running it: whatever goes wrong, one plain
sentence and an exit status, never a traceback."""

from pathlib import Path

from click.testing import CliRunner

from equip_mailer.cli import common, main


def test_an_unexpected_failure_is_one_sentence_with_the_details_in_a_file(monkeypatch, demo_path):
    def broken(*_a, **_k):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(common, "load_settings", broken)  # stand-in for any bug deep inside
    result = CliRunner().invoke(main, ["status", str(demo_path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "something unexpected went wrong (ZeroDivisionError)" in result.output
    saved = Path(result.output.split("Details for the developers are in ")[1].strip().rstrip("."))
    assert "ZeroDivisionError: boom" in saved.read_text()
    saved.unlink()
