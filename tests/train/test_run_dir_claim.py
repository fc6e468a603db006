"""`RunDir` on its own: a new run refuses a directory that holds one, and a failed start removes exactly
what it made."""

from __future__ import annotations

import pytest

from icrl.train.run_dir import RunDir


def test_a_failed_start_removes_the_folders_it_made(tmp_path) -> None:
    run = RunDir(tmp_path / "runs" / "a")
    run.claim(resume=False)
    assert run.owned and run.path.is_dir()
    (run.path / "metrics.jsonl").write_text("")
    run.release()
    run.undo_start()
    assert not (tmp_path / "runs").exists()


def test_a_folder_that_existed_empty_stays_and_is_emptied(tmp_path) -> None:
    run = RunDir(tmp_path)
    run.claim(resume=False)
    (tmp_path / "buffer").mkdir()
    run.release()
    run.undo_start()
    assert tmp_path.is_dir() and not list(tmp_path.iterdir())


def test_an_existing_run_is_refused_and_never_undone(tmp_path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileExistsError, match="icrl resume"):
        RunDir(tmp_path).claim(resume=False)
    run = RunDir(tmp_path)
    run.claim(resume=True)
    run.release()
    run.undo_start()  # a resumed run's files are never this start's
    assert (tmp_path / "config.json").is_file()
