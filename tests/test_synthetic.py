"""The demo-list generator as a newcomer runs it: `python -m equip_mailer.synthetic`."""

import pytest

from equip_mailer import synthetic


def test_asking_for_help_explains_and_writes_nothing(tmp_path, monkeypatch, capsys):
    """Found following the README: `--help` was taken for the folder, so the demo lists
    were written under a new folder named '--help' and the run said 'wrote --help/lists/...'."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        synthetic.main(["--help"])
    assert done.value.code == 0
    assert "lists/" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_the_folder_given_gets_the_lists(tmp_path, capsys):
    synthetic.main([str(tmp_path)])
    assert (tmp_path / "lists" / "practice-staff.csv").is_file()
    assert f"wrote {tmp_path / 'lists' / 'practice-staff.csv'}" in capsys.readouterr().out
