"""The front door: an unexpected failure ends in one paragraph naming a crash report, never a
bare traceback on the console of a nightly job; --debug shows the traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import tiny_world, write_config, write_world

ROOT = Path(__file__).resolve().parents[2]
# A bug planted in a subprocess: the features command calls features_at, made to raise.
PLANTED = """
import sys
import features.model_input as model_input
def broken(*args, **kwargs):
    raise ZeroDivisionError("planted bug at https://ann:s3cret-word@tracking.example.org")
model_input.features_at = broken
from pipeline.cli import app
sys.argv = ["churn", *sys.argv[1:]]
app()
"""


def run_churn(*args: str, bug: str | None = None) -> subprocess.CompletedProcess:
    """`churn ARGS` in a subprocess with the planted bug (or `bug`, the statement it runs instead)."""
    code = PLANTED if bug is None else PLANTED.replace(
        'raise ZeroDivisionError("planted bug at https://ann:s3cret-word@tracking.example.org")', bug)
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT)


def test_an_unexpected_failure_is_one_paragraph_with_a_crash_report(tmp_path):
    write_world(tmp_path / "data", tiny_world())
    config = write_config(tmp_path)
    done = run_churn("features", "--config", str(config), "--as-of", "2025-06-01", "--out", str(tmp_path / "f.parquet"))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert "`churn features` failed unexpectedly with ZeroDivisionError: planted bug" in last
    assert "s3cret-word" not in done.stderr  # a credential in an exception message is masked too
    report = Path(last.split("The full traceback is in ")[1].split(" (or rerun")[0])
    assert report.parent == tmp_path / "outputs" / "logs"  # beside the project of the config
    text = report.read_text(encoding="utf-8")
    assert "Traceback" in text and "ZeroDivisionError" in text and "s3cret-word" not in text


def test_debug_shows_the_traceback(tmp_path):
    write_world(tmp_path / "data", tiny_world())
    config = write_config(tmp_path)
    done = run_churn("features", "--config", str(config), "--as-of", "2025-06-01", "--out", str(tmp_path / "f.parquet"),
                     "--debug")
    assert done.returncode != 0 and "Traceback" in done.stderr and "ZeroDivisionError" in done.stderr


def test_ctrl_c_anywhere_is_one_line_and_exit_130(tmp_path):
    """Ctrl-C during a step that has no handler of its own (here: building features)."""
    write_world(tmp_path / "data", tiny_world())
    config = write_config(tmp_path)
    done = run_churn("features", "--config", str(config), "--as-of", "2025-06-01", "--out", str(tmp_path / "f.parquet"),
                     bug="raise KeyboardInterrupt")
    assert done.returncode == 130 and "Traceback" not in done.stderr
    assert "`churn features` was stopped before it finished" in done.stderr.strip().splitlines()[-1]


def test_a_mistyped_value_is_a_usage_error_not_a_crash(tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    write_world(tmp_path / "data", tiny_world())
    config = str(write_config(tmp_path))
    for args in (["score", "--as-of", "2026-13-01"], ["train", "--promote", "foo"], ["features"],
                 ["generate", "--format", "xml", "--out", str(tmp_path / "w")]):
        done = CliRunner().invoke(app, [*args, "--config", config] if args[0] != "generate" else args)
        assert done.exit_code == 2, (args, done.output)
        assert "failed unexpectedly" not in done.output
    assert not (tmp_path / "outputs" / "logs").exists()


def test_sigterm_anywhere_is_one_line_and_exit_143(tmp_path):
    """A SIGTERM (a scheduler stopping the nightly job) during a step with no handler of its own."""
    write_world(tmp_path / "data", tiny_world())
    config = write_config(tmp_path)
    done = run_churn("features", "--config", str(config), "--as-of", "2025-06-01", "--out", str(tmp_path / "f.parquet"),
                     bug="import os, signal, time; os.kill(os.getpid(), signal.SIGTERM); time.sleep(5)")
    assert done.returncode == 143 and "Traceback" not in done.stderr
    assert "`churn features` was stopped before it finished" in done.stderr.strip().splitlines()[-1]


def test_command_line_defaults_write_into_the_project_not_the_shells_folder(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from pipeline.cli import app

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    write_world(project / "data", tiny_world())
    config = write_config(project)
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    done = CliRunner().invoke(app, ["features", "--config", str(config), "--as-of", "2025-06-01"])
    assert done.exit_code == 0, done.output
    assert (project / "outputs" / "features" / "features_2025-06-01.parquet").is_file()
    done = CliRunner().invoke(app, ["report", "--config", str(config), "--from", "2025-01-01", "--to", "2025-07-01"])
    assert done.exit_code == 0, done.output
    assert (project / "outputs" / "report" / "kpi_report.html").is_file()
    assert list(elsewhere.iterdir()) == []
