"""Settings: the environment wins over the project's equip-mailer.toml, which wins over the
user's config file; places are resolved against the project root; a bad value is one
sentence naming the variable or the file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.link_secrets import LINK_SECRET

from equip_mailer import store
from equip_mailer.config import ENV_NAMES, KEYS, Settings, load_settings
from equip_mailer.errors import ConfigError
from equip_mailer.project import find_project

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "equip"
    (root / "campaigns").mkdir(parents=True)
    return root


def write_toml(root: Path, text: str):
    (root / "equip-mailer.toml").write_text(text, encoding="utf-8")
    return find_project(root)


def settings_for(project, env: dict | None = None, user: str | None = None) -> Settings:
    user_file = project.root.parent / "user-config.toml"
    if user is not None:
        user_file.write_text(user, encoding="utf-8")
    env = {"EQUIP_LINK_SECRET": LINK_SECRET, **(env or {})}
    return load_settings(env, user_file, project=project)


def test_the_default_store_and_outbox_live_in_the_project_not_the_current_folder(
    project, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # anywhere else
    cfg = settings_for(find_project(project))
    assert cfg.database_url == f"sqlite:///{project / 'equip-mailer.db'}"
    assert cfg.outbox == project / "outbox"


def test_the_environment_wins_over_the_project_file_which_wins_over_the_users(project):
    found = write_toml(
        project,
        'public_url = "https://project.example.org/"\nsender_domain = "Example.org"\n'
        'database_url = "sqlite:///data/equip.db"\noutbox = "mail/outbox"\n',
    )
    (project / "data").mkdir()
    user = 'public_url = "https://user.example.org"\nsendgrid_api_key = "SG.user"\n'
    cfg = settings_for(found, user=user)
    assert cfg.public_url == "https://project.example.org"
    assert cfg.sender_domain == "example.org"
    assert cfg.database_url == f"sqlite:///{project / 'data' / 'equip.db'}"
    assert cfg.outbox == project / "mail" / "outbox"
    assert cfg.sendgrid_api_key == "SG.user"
    assert cfg.where("public_url") == f"{project / 'equip-mailer.toml'}:1"
    env = {"EQUIP_PUBLIC_URL": "https://env.example.org", "SENDGRID_API_KEY": "SG.env"}
    cfg = settings_for(found, env, user=user)
    assert (cfg.public_url, cfg.sendgrid_api_key) == ("https://env.example.org", "SG.env")
    assert cfg.where("public_url") == "EQUIP_PUBLIC_URL"
    assert "SG.env" not in repr(cfg) and LINK_SECRET not in repr(cfg)


def test_an_unknown_key_names_the_file_line_and_the_likely_one(project):
    found = write_toml(project, '# settings\npublic_url = "https://e.example.org"\npublic_ur = 1\n')
    with pytest.raises(ConfigError) as caught:
        settings_for(found)
    assert str(caught.value) == (
        f"{project / 'equip-mailer.toml'}:3: unknown setting 'public_ur' "
        "(did you mean 'public_url'?)"
    )
    # what it offers can be written there: not the secrets, which the file refuses
    assert "public_url" in caught.value.hint and "database_url" in caught.value.hint
    assert "link_secret" not in caught.value.hint and "sendgrid_api_key" not in caught.value.hint


@pytest.mark.parametrize("name", ["sendgrid_api_key", "link_secret"])
def test_secrets_are_refused_in_the_project_file_saying_where_they_go(project, name):
    found = write_toml(project, f'\n{name} = "{LINK_SECRET}"\n')
    with pytest.raises(ConfigError) as caught:
        settings_for(found)
    message = str(caught.value)
    assert message.startswith(f"{project / 'equip-mailer.toml'}:2: {name} is a secret")
    assert f"set {ENV_NAMES[name]} in the environment" in message
    assert LINK_SECRET not in message


def test_a_database_password_is_refused_in_the_project_file(project):
    found = write_toml(project, 'database_url = "postgresql://equip:hunter2@db/equip"\n')
    with pytest.raises(ConfigError, match=r"toml:1: database_url holds a password") as caught:
        settings_for(found)
    assert "hunter2" not in str(caught.value)


def test_postgres_urls_of_either_spelling_reach_postgresql(project, pg_url):
    """Heroku and many guides write postgres://; SQLAlchemy knows only postgresql://."""
    rest = pg_url.split("://", 1)[1]
    for scheme in ("postgres", "postgresql"):
        cfg = settings_for(find_project(project), {"EQUIP_DATABASE_URL": f"{scheme}://{rest}"})
        assert cfg.database_url.startswith("postgresql+psycopg://")
        engine = store.open_store(cfg.database_url)
        with engine.connect() as conn:
            assert conn.dialect.name == "postgresql"
        engine.dispose()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "mysql://equip:pw@db/equip",
            "EQUIP_DATABASE_URL: mysql://equip:***@db/equip is not a database equip-mailer can "
            "use (only SQLite and PostgreSQL)",
        ),
        ("not a url", "EQUIP_DATABASE_URL: the value is not a database URL"),
        ("sqlite:///no/such/folder/equip.db", "EQUIP_DATABASE_URL: the folder "),
    ],
)
def test_a_database_url_that_cannot_work_is_one_sentence_naming_the_variable(
    project, value, message
):
    with pytest.raises(ConfigError) as caught:
        settings_for(find_project(project), {"EQUIP_DATABASE_URL": value})
    assert str(caught.value).startswith(message)
    assert "pw@" not in str(caught.value)
    assert not (project / "no").exists()  # the missing folder is not made quietly


@pytest.mark.parametrize(
    ("var", "value", "fragment"),
    [
        ("EQUIP_PUBLIC_URL", "equip.example.org", "is not an absolute URL"),
        ("EQUIP_PUBLIC_URL", "https://equip.example.org/?x=1", "must be a plain address"),
        ("SENDGRID_API_HOST", "http://[::1", "is not an absolute URL"),  # unclosed bracket
        ("EQUIP_PUBLIC_URL", "https://equip.example.org:80a", "is not an absolute URL"),
        ("EQUIP_SENDGRID_TIMEOUT", "soon", "must be a number of seconds"),
        ("EQUIP_SENDER_DOMAIN", "equip@example.org", "is not a domain name"),
    ],
)
def test_other_bad_values_name_their_variable(project, var, value, fragment):
    with pytest.raises(ConfigError) as caught:
        settings_for(find_project(project), {var: value})
    assert str(caught.value).startswith(f"{var}: ") and fragment in str(caught.value)


def test_a_bad_value_in_the_project_file_names_the_file_line_and_setting(project):
    found = write_toml(project, '\n\nsendgrid_timeout = "soon"\n')
    with pytest.raises(ConfigError) as caught:
        settings_for(found)
    assert str(caught.value).startswith(
        f"{project / 'equip-mailer.toml'}:3: sendgrid_timeout: must be a number of seconds"
    )


def test_the_readme_documents_every_setting():
    """The configuration table names each variable and its key in equip-mailer.toml."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| Variable | equip-mailer.toml") :]
    for name, key in KEYS.items():
        row = re.search(rf"^\| `{key.env}` \| ([^|]*) \|", table, re.M)
        assert row, f"README's configuration table has no row for {key.env}"
        expected = "(secret: not here)" if key.secret else f"`{name}`"
        assert expected in row.group(1), f"{key.env}: {row.group(1)}"


def test_the_readmes_defaults_are_the_code_defaults():
    """The Default column is what a manager relies on (a timeout, the retention period); it
    must say the value Settings really falls back to, and 'unset' where there is none."""
    from dataclasses import fields

    text = README.read_text(encoding="utf-8")
    table = text[text.index("| Variable | equip-mailer.toml") :]
    for f in fields(Settings):
        if f.name not in KEYS:
            continue
        row = re.search(rf"^\| `{KEYS[f.name].env}` \|[^|]*\| ([^|]*) \|", table, re.M)
        assert row, KEYS[f.name].env
        shown = row.group(1)
        if f.default in (None, ()):
            if f.name != "mail_from":  # worked out from the public URL when unset
                assert "unset" in shown or "generated" in shown, f"{KEYS[f.name].env}: {shown}"
            continue
        value = f.default
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        assert f"`{value}`" in shown, f"{KEYS[f.name].env}: README says {shown}, code {value!r}"
