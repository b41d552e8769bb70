"""The settings table (aiblog.config.SETTINGS) is the one place the blog reads
its environment, the README shows all of it, and passwords given on their own
reach the database and Redis clients intact."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from redis.connection import parse_url
from sqlalchemy.engine import make_url

from aiblog import config, create_app

REPO = Path(__file__).resolve().parents[1]
SERVICE = REPO / "service"
# Variables the code reads that are not settings: written by the gunicorn
# master for its own workers (see aiblog.monitoring.metrics_server, aiblog.runtime_dir), never by a user.
INTERNAL_VARIABLES = {"AIBLOG_METRICS_MASTER_PID", "AIBLOG_RUNTIME_DIR"}
AWKWARD_PASSWORD = "p@ss:w/rd%?#&"


def test_a_database_password_with_at_and_colon_reaches_the_driver_intact():
    values = config.load({"DATABASE_URL": "postgresql://blog@db.example:5432/aiblog",
                          "DATABASE_PASSWORD": AWKWARD_PASSWORD})
    url = make_url(values["DATABASE_URL"])  # SQLAlchemy's own parser, as the engine reads it
    assert (url.username, url.password, url.host, url.port, url.database) == \
        ("blog", AWKWARD_PASSWORD, "db.example", 5432, "aiblog")
    app = create_app({"DATABASE_URL": "postgresql://blog:old@db.example/aiblog", "DATABASE_PASSWORD": AWKWARD_PASSWORD,
                      "REDIS_URL": ""})
    engine_url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    assert (engine_url.drivername, engine_url.password, engine_url.host) == \
        ("postgresql+psycopg2", AWKWARD_PASSWORD, "db.example")


def test_a_redis_password_with_at_and_colon_reaches_the_client_intact():
    values = config.load({"REDIS_URL": "redis://redis.example:6380/2", "REDIS_PASSWORD": AWKWARD_PASSWORD})
    parsed = parse_url(values["REDIS_URL"])  # what redis.Redis.from_url connects with
    assert (parsed["password"], parsed["host"], parsed["port"], parsed["db"]) == \
        (AWKWARD_PASSWORD, "redis.example", 6380, 2)


def test_a_password_without_a_url_host_is_a_clear_error():
    with pytest.raises(config.ConfigError, match="REDIS_PASSWORD: a password needs a URL with a host"):
        config.load({"REDIS_URL": "", "REDIS_PASSWORD": "secret"})


def test_settings_command_never_prints_a_secret():
    from click.testing import CliRunner

    from aiblog.cli import settings_command

    env = {"DATABASE_URL": "postgresql://blog@db/aiblog", "DATABASE_PASSWORD": AWKWARD_PASSWORD,
           "SECRET_KEY": "k" * 32, "ADMIN_PASSWORD": "admin-secret-123"}
    output = CliRunner().invoke(settings_command, [], env=env).output
    assert "DATABASE_PASSWORD=(set)" in output and "DATABASE_URL=postgresql://blog:***@db/aiblog" in output
    for secret in ("p%40ss", AWKWARD_PASSWORD, "k" * 32, "admin-secret-123"):
        assert secret not in output


def _environment_reads(path: Path) -> list[tuple[int, str | None]]:
    """(line, variable) of every environment read in a module: os.environ.get(X),
    os.environ[X], os.getenv(X), click's envvar=X. None: a name not resolvable."""
    tree = ast.parse(path.read_text(), str(path))
    constants = {target.id: node.value.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                 for target in node.targets if isinstance(target, ast.Name)}
    constants.update(_imported_constants(tree))

    def name_of(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return constants.get(node.id) if isinstance(node, ast.Name) else None

    from_os = {alias.asname or alias.name for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and node.module == "os" for alias in node.names}

    def is_os(node: ast.AST, name: str) -> bool:
        """``os.<name>``, or ``<name>`` imported from os (a WSGI ``environ`` is not)."""
        return (isinstance(node, ast.Attribute) and node.attr == name
                and isinstance(node.value, ast.Name) and node.value.id == "os") or \
            (isinstance(node, ast.Name) and node.id == name and name in from_os)

    def is_environ(node: ast.AST) -> bool:
        return is_os(node, "environ")

    reads = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if (isinstance(func, ast.Attribute) and func.attr == "get" and is_environ(func.value)) \
                    or is_os(func, "getenv"):
                reads.append((node.lineno, name_of(node.args[0]) if node.args else None))
            for keyword in node.keywords:
                if keyword.arg == "envvar":
                    reads.append((node.lineno, name_of(keyword.value)))
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and is_environ(node.value):
            reads.append((node.lineno, name_of(node.slice)))
    return reads


def _imported_constants(tree: ast.Module) -> dict[str, str]:
    """String constants a module imports by name from another aiblog module."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level and node.module:
            source = SERVICE / "aiblog" / Path(*node.module.split("."))
            for candidate in (source.with_suffix(".py"), source / "__init__.py"):
                if candidate.exists():
                    module = ast.parse(candidate.read_text())
                    values = {t.id: n.value.value for n in module.body if isinstance(n, ast.Assign)
                              and isinstance(n.value, ast.Constant) for t in n.targets if isinstance(t, ast.Name)}
                    found.update({alias.asname or alias.name: values[alias.name] for alias in node.names
                                  if alias.name in values})
    return found


def test_every_environment_variable_the_blog_reads_is_in_the_settings_table():
    table = {setting.env for setting in config.SETTINGS}
    problems = []
    for path in sorted(SERVICE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for line, name in _environment_reads(path):
            where = f"{path.relative_to(REPO)}:{line}"
            if name is None:
                problems.append(f"{where}: reads a variable whose name is not a constant")
            elif name not in table | INTERNAL_VARIABLES:
                problems.append(f"{where}: reads {name}, which is not in aiblog.config.SETTINGS")
    assert not problems, "\n".join(problems)


def test_the_scan_finds_reads_written_every_way(tmp_path):
    module = tmp_path / "sample.py"
    module.write_text("import os\nNAME = 'B'\nos.environ.get('A')\nos.environ[NAME]\nos.getenv('C')\n"
                      "option(envvar='D')\nos.environ.get(dynamic)\nos.environ['E'] = '1'\n"
                      "request.environ.get('wsgi.url_scheme')\n")
    assert sorted(_environment_reads(module), key=lambda read: read[0]) == \
        [(3, "A"), (4, "B"), (5, "C"), (6, "D"), (7, None)]


def test_readme_configuration_table_is_the_generated_one():
    readme = (REPO / "README.md").read_text()
    assert config.markdown_table() in readme, "README's table is stale: run python scripts/readme_settings.py"


def _run(command: list[str], **env: str):
    """``command`` (``python`` or ``aiblog`` of this venv first) with only ``env`` as blog settings."""
    import os
    import subprocess
    import sys

    own = {setting.env for setting in config.SETTINGS}
    clean = {k: v for k, v in os.environ.items() if k not in own}
    program = sys.executable if command[0] == "python" else str(Path(sys.executable).parent / command[0])
    return subprocess.run([program, *command[1:]], env={**clean, **env}, capture_output=True, text=True,
                          timeout=60, cwd=REPO)


def test_gunicorn_takes_its_settings_from_the_table():
    done = _run(["python", "-c", "import aiblog.gunicorn_conf as c; print(c.worker_class, c.max_requests, "
                       "c.max_requests_jitter, c.loglevel, c.accesslog, c.forwarded_allow_ips, c.control_socket_disable)"],
                GUNICORN_WORKER_CLASS="gthread", GUNICORN_MAX_REQUESTS="5000", LOG_LEVEL="WARNING",
                GUNICORN_ACCESS_LOG="-", FORWARDED_ALLOW_IPS="*")
    assert done.stdout.split() == ["gthread", "5000", "500", "warning", "-", "*", "True"], done.stderr
    default = _run(["python", "-c", "import aiblog.gunicorn_conf as c; print(c.max_requests, c.max_requests_jitter, c.accesslog)"])
    assert default.stdout.split() == ["0", "0", "None"], default.stderr  # no restarts unless asked


def test_serve_refuses_a_bad_setting_in_one_line():
    done = _run(["aiblog", "serve"], LOG_LEVEL="loud")
    assert done.returncode == 2, done
    assert done.stderr.strip() == ("aiblog: configuration error: LOG_LEVEL: expected one of debug, info, warning, "
                                   "error, critical, got 'loud'"), done.stderr
