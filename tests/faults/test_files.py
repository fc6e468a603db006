"""Damaged or hostile files in a run directory: rewrites are atomic (a crash mid-write loses nothing),
damaged lines of metrics.jsonl are reported and kept, and a damaged checkpoint is named and passed over for
the newest intact one; latest.json and --checkpoint never lead outside the run."""

from __future__ import annotations

import builtins
import io
import json
import os
import random
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from icrl.cli import main
from icrl.train.checkpoint import latest_checkpoint
from icrl.train.logger import RunLogger, read_metrics

NEWEST, PREVIOUS = "ckpt_000000010", "ckpt_000000008"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_config) -> Path:
    """One tiny trained run (10 updates, 100 env steps) with checkpoints at 6, 8 and 10 updates."""
    from icrl.train.trainer import Trainer

    run = tmp_path_factory.mktemp("files") / "run"
    cfg = tiny_config(run, total_env_steps=100, eval_every=0, eval_trials=2, checkpoint_every=2)
    trainer = Trainer(cfg)
    trainer.run()
    names = sorted(p.name for p in (run / "checkpoints").glob("ckpt_*"))
    assert names == ["ckpt_000000006", PREVIOUS, NEWEST], names
    return run


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A copy of the trained run, to damage."""
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def _cli(argv: list[str], capsys) -> tuple[dict | None, list[str]]:
    """Run the CLI; (the JSON it printed last or None, the warnings raised)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main(argv)
    lines = capsys.readouterr().out.strip().splitlines()
    return (json.loads(lines[-1]) if lines else None), [str(w.message) for w in caught]


def _cli_error(argv: list[str], capsys) -> str:
    """Run the CLI, expecting a one-line user error (SystemExit with a message, no traceback)."""
    with pytest.raises(SystemExit) as raised, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(argv)
    capsys.readouterr()
    message = raised.value.code
    assert isinstance(message, str) and len(message.splitlines()) == 1, message
    return message


# ---------------------------------------------------------------------------------------------------------
# Atomic rewrites

REWRITTEN = ("config.json", "metrics.jsonl", "latest.json", "state.json", "select.json")


def _record_in_place_writes(root: Path, monkeypatch) -> list[str]:
    """Record each opening for writing ('w' or 'x') of a run file under its final name (not a hidden
    temporary file or folder): a write that a crash can leave half done in place."""
    found: list[str] = []
    real_open = io.open
    base = root.resolve()

    def watching_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and ("w" in mode or "x" in mode):
            path = Path(file).resolve()
            if path.is_relative_to(base):
                rel = path.relative_to(base)
                named = path.name in REWRITTEN or (path.name.startswith("eval") and path.suffix == ".json")
                if named and not any(part.startswith(".") for part in rel.parts):
                    found.append(str(rel))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(io, "open", watching_open)  # pathlib's write_text / write_bytes / open use io.open
    monkeypatch.setattr(builtins, "open", watching_open)
    return found


@pytest.mark.fault(probe="train, resume --total-env-steps, eval, select",
                   expected="no run file rewritten in place")
def test_run_files_are_only_rewritten_atomically(tmp_path, tiny_cli, capsys, monkeypatch, record_property):
    run = tmp_path / "run"
    in_place = _record_in_place_writes(run, monkeypatch)
    main(["train", "icrl/TMaze-v0", *tiny_cli, "--run-dir", str(run), "--total-env-steps", "60",
          "--checkpoint-every", "2"])
    with open(run / "metrics.jsonl", "a") as f:  # a torn last line: the resume rewrites the file
        f.write('{"env_steps": 9')
    _cli(["resume", str(run), "--total-env-steps", "80"], capsys)  # rewrites config.json too
    _cli(["eval", str(run), "--trials", "2"], capsys)
    _cli(["select", str(run), "--trials", "2", "--no-progress"], capsys)
    record_property("observed", f"written in place: {in_place or 'nothing'}")
    assert in_place == []
    assert (run / "eval.json").is_file() and (run / "select.json").is_file()
    assert json.loads((run / "config.json").read_text())["total_env_steps"] == 80


@pytest.mark.fault(probe="crash in the middle of the resume's metrics.jsonl rewrite",
                   expected="the old file stays whole")
def test_a_crash_while_metrics_are_rewritten_loses_nothing(run, monkeypatch, record_property):
    path = run / "metrics.jsonl"
    rows = [{"env_steps": 10 * i, "updates": i, "wall_time_s": float(i)} for i in range(1, 9)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"env_steps": 9')  # torn last line
    before = path.read_bytes()
    real_open = io.open

    class CrashingFile(io.BufferedWriter):
        def write(self, data):  # half the data reaches the file, then the machine stops
            super().write(bytes(data)[: len(data) // 2])
            self.flush()
            raise OSError("simulated crash mid-write")

    def crashing_open(file, mode="r", *args, **kwargs):
        if "metrics.jsonl" in str(file) and "w" in mode:
            raw = CrashingFile(real_open(file, "wb", buffering=0))
            return raw if "b" in mode else io.TextIOWrapper(raw, encoding="utf-8")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(io, "open", crashing_open)
    monkeypatch.setattr(builtins, "open", crashing_open)
    with pytest.raises(OSError, match="simulated crash"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        RunLogger(run, tensorboard=False, resume_at=(50, 5))  # would drop the torn line and rows 6-8
    monkeypatch.undo()
    leftovers = [p.name for p in run.iterdir() if p.name.startswith(".metrics")]
    unchanged = path.read_bytes() == before
    record_property("observed", f"file unchanged: {unchanged}; temporary files left: {leftovers}")
    assert path.read_bytes() == before
    assert leftovers == []


# ---------------------------------------------------------------------------------------------------------
# Damaged lines in metrics.jsonl


def _rows(count: int) -> list[dict]:
    """Rows a run at <= 10 updates could have logged (none is after its newest checkpoint)."""
    return [{"env_steps": 10 * i, "updates": i, "wall_time_s": float(i), "x": i} for i in range(1, count + 1)]


@pytest.mark.fault(probe="garbage line in the middle of metrics.jsonl, then icrl resume",
                   expected="kept, warned by line number")
def test_a_damaged_middle_line_is_kept_and_reported(run, capsys, record_property):
    path = run / "metrics.jsonl"
    rows = _rows(4)
    garbage = b'{"env_steps": 25, "upd#@!garbage'
    lines = [json.dumps(r).encode() for r in rows]
    path.write_bytes(b"\n".join(lines[:2] + [garbage] + lines[2:]) + b'\n{"env_steps": 9')  # + torn line
    # (a larger budget: a resume of the finished run would leave it as it is)
    _, caught = _cli(["resume", str(run), "--total-env-steps", "120"], capsys)
    reports = [w for w in caught if "metrics.jsonl" in w]
    record_property("observed", " | ".join(reports))
    assert any("line 3 is not a JSON object" in w for w in reports), caught
    assert any("dropped line 6" in w for w in reports), caught  # the torn last line, reported too
    kept = path.read_bytes().split(b"\n")
    assert kept[2] == garbage and kept[:2] == lines[:2] and kept[3:5] == lines[2:]
    assert b'{"env_steps": 9' + b"\n" not in path.read_bytes()
    with pytest.warns(UserWarning, match="line 3 is not a JSON object"):
        assert read_metrics(run)[:4] == rows


@pytest.mark.parametrize(
    "bad", [b"[1, 2]", b"5", b'"x"', b"null", b'\xff\xfe{"env_steps": 1}'],
    ids=["list", "number", "string", "null", "invalid-utf8"],
)
@pytest.mark.fault(probe="a non-object or non-UTF-8 line in metrics.jsonl, then icrl resume and read_metrics",
                   expected="a warning naming the line; resume works")
def test_a_non_object_line_is_a_clear_message(run, bad, capsys, record_property):
    path = run / "metrics.jsonl"
    lines = [json.dumps(r).encode() for r in _rows(3)]
    path.write_bytes(b"\n".join([lines[0], bad, *lines[1:]]) + b"\n")
    result, caught = _cli(["resume", str(run), "--total-env-steps", "120"], capsys)
    reports = [w for w in caught if "metrics.jsonl" in w]
    record_property("observed", " | ".join(reports))
    assert result is not None and "eval/return" in result
    assert any("line 2 is not a JSON object" in w for w in reports), caught
    assert path.read_bytes().split(b"\n")[1] == bad
    with pytest.warns(UserWarning, match="line 2 is not a JSON object"):
        rows = read_metrics(run)
    assert all(isinstance(r, dict) for r in rows) and rows[-1]["env_steps"] == 120


# ---------------------------------------------------------------------------------------------------------
# Damaged checkpoints


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _zero(path: Path) -> None:
    path.write_bytes(bytes(path.stat().st_size))


def _garbage(path: Path) -> None:
    path.write_bytes(random.Random(0).randbytes(path.stat().st_size))


def _flip_last_byte(path: Path) -> None:
    """Same size, header intact: only the recorded sha256 tells."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE: dict[str, Callable[[Path], None]] = {"truncated": _truncate, "zeroed": _zero, "garbage": _garbage}
FILES = ("agent.safetensors", "optimizer.safetensors", "state.json")
CASES = [(file, how) for file in FILES for how in DAMAGE]


@pytest.mark.parametrize(("file", "how"), [*CASES, ("agent.safetensors", "one byte flipped")],
                         ids=[f"{f}-{h}" for f, h in CASES] + ["agent.safetensors-flipped"])
@pytest.mark.fault(probe="damaged file in the latest checkpoint, then icrl eval and icrl resume",
                   expected="warning naming the file; the previous checkpoint is used")
def test_a_damaged_latest_checkpoint_falls_back(run, file, how, capsys, record_property):
    damaged = run / "checkpoints" / NEWEST / file
    DAMAGE.get(how, _flip_last_byte)(damaged)
    result, caught = _cli(["eval", str(run), "--trials", "2"], capsys)
    record_property("observed", " | ".join(caught))
    assert result["checkpoint"] == PREVIOUS
    assert any(f"{NEWEST}/{file} is damaged" in w and f"using {PREVIOUS}" in w for w in caught), caught
    result, caught = _cli(["resume", str(run)], capsys)
    assert any(f"{NEWEST}/{file} is damaged" in w and f"using {PREVIOUS}" in w for w in caught), caught
    # It trained again from the previous checkpoint and wrote the newest one anew, whole.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert latest_checkpoint(run / "checkpoints").name == NEWEST
    assert read_metrics(run)[-1]["updates"] == 10


@pytest.mark.fault(probe="icrl eval --checkpoint NAME whose agent.safetensors is truncated",
                   expected="one-line error naming the file, no fallback")
def test_a_damaged_named_checkpoint_is_an_error(run, capsys, record_property):
    _truncate(run / "checkpoints" / NEWEST / "agent.safetensors")
    line = _cli_error(["eval", str(run), "--trials", "2", "--checkpoint", "10"], capsys)
    record_property("observed", line)
    assert line.startswith("icrl eval: ") and f"{NEWEST}/agent.safetensors is damaged" in line
    assert not (run / f"eval-{NEWEST}.json").exists()


@pytest.mark.fault(probe="every checkpoint's agent.safetensors damaged, then icrl resume / icrl eval",
                   expected="one line: no intact checkpoint, what to do")
def test_no_intact_checkpoint_is_one_line(run, capsys, record_property):
    for ckpt in (run / "checkpoints").glob("ckpt_*"):
        _zero(ckpt / "agent.safetensors")
    resume_line = _cli_error(["resume", str(run)], capsys)
    eval_line = _cli_error(["eval", str(run), "--trials", "2"], capsys)
    record_property("observed", resume_line)
    for line in (resume_line, eval_line):
        assert "no intact checkpoint" in line and f"{NEWEST}/agent.safetensors is damaged" in line
        assert "restore" in line


@pytest.mark.fault(probe="checkpoints written without the file record (older runs), latest one truncated",
                   expected="they load; the damage is still found")
def test_checkpoints_without_the_file_record(run, capsys, record_property):
    for ckpt in (run / "checkpoints").glob("ckpt_*"):
        state = json.loads((ckpt / "state.json").read_text())
        state.pop("files", None)
        (ckpt / "state.json").write_text(json.dumps(state))
    result, caught = _cli(["eval", str(run), "--trials", "2"], capsys)
    assert result["checkpoint"] == NEWEST and not caught
    _truncate(run / "checkpoints" / NEWEST / "optimizer.safetensors")
    result, caught = _cli(["eval", str(run), "--trials", "2"], capsys)
    record_property("observed", " | ".join(caught))
    assert result["checkpoint"] == PREVIOUS
    assert any(f"{NEWEST}/optimizer.safetensors is damaged" in w for w in caught), caught


# ---------------------------------------------------------------------------------------------------------
# latest.json and --checkpoint stay inside the run


@pytest.fixture
def elsewhere(run, tmp_path) -> Path:
    """A whole checkpoint outside the run (a copy of its oldest one)."""
    other = tmp_path / "elsewhere" / "ckpt_000000099"
    shutil.copytree(run / "checkpoints" / "ckpt_000000006", other)
    return other


@pytest.mark.parametrize("how", ["relative", "absolute", "symlink"])
@pytest.mark.fault(probe="latest.json naming a checkpoint outside the run (../, absolute, symlink)",
                   expected="ignored with a warning, never loaded")
def test_latest_json_never_leads_outside_the_run(run, elsewhere, how, capsys, record_property):
    root = run / "checkpoints"
    name = {"relative": "../../elsewhere/ckpt_000000099", "absolute": str(elsewhere)}.get(how, elsewhere.name)
    if how == "symlink":
        (root / elsewhere.name).symlink_to(elsewhere, target_is_directory=True)
    (root / "latest.json").write_text(json.dumps({"checkpoint": name}))
    result, caught = _cli(["eval", str(run), "--trials", "2"], capsys)
    record_property("observed", " | ".join(caught))
    assert result["checkpoint"] == NEWEST
    assert any("latest.json names" in w and "not a checkpoint folder inside" in w for w in caught), caught
    _, caught = _cli(["resume", str(run), "--total-env-steps", "120"], capsys)  # the run had finished
    assert any("latest.json names" in w for w in caught), caught
    line = _cli_error(["eval", str(run), "--trials", "2", "--checkpoint", name], capsys)
    assert "is not a checkpoint folder inside" in line


@pytest.mark.fault(probe="latest.json overwritten with garbage",
                   expected="warning; the newest checkpoint is used")
def test_a_garbage_latest_json_is_passed_over(run, capsys, record_property):
    (run / "checkpoints" / "latest.json").write_bytes(b"\x00\x00\xffnot json")
    result, caught = _cli(["eval", str(run), "--trials", "2"], capsys)
    record_property("observed", " | ".join(caught))
    assert result["checkpoint"] == NEWEST
    assert any("latest.json is unreadable" in w for w in caught), caught
    _cli(["resume", str(run), "--total-env-steps", "120"], capsys)  # the run had finished
    # It went on from the newest checkpoint (10 updates; 2 more) and named its own in a whole latest.json.
    assert json.loads((run / "checkpoints" / "latest.json").read_text()) == {"checkpoint": "ckpt_000000012"}
