import hashlib
import json
import threading
import time

import numpy as np
import pytest
from PIL import Image

from ganstudio.batch import (
    BatchError,
    BatchOptions,
    BatchRunner,
    ChainStep,
    find_inputs,
    load_preset,
    output_path,
    save_preset,
)
from ganstudio.cli import main
from ganstudio.engine import CancelToken
from ganstudio.imaging import read_image


def make_folder(folder, count=5, broken=True):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray((rng.random((24, 32, 3)) * 255).astype(np.uint8)).save(folder / f"img{i}.png")
    if broken:
        (folder / "empty.jpg").write_bytes(b"")
        (folder / "notes.png").write_bytes(b"this is not an image")
        good = (folder / "img0.png").read_bytes()
        (folder / "cut.png").write_bytes(good[: len(good) // 2])
    return folder


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def options(tmp_path, **kwargs):
    kwargs.setdefault("chain", [ChainStep("superres", {"model": "bicubic", "scale": 2})])
    return BatchOptions(tmp_path / "in", tmp_path / "out", **kwargs)


def test_chain_step_parsing():
    step = ChainStep.parse("superres:model=lanczos,scale=2")
    assert step.tool == "superres" and step.build_params().scale == 2 and step.build_params().model == "lanczos"
    assert ChainStep.parse("inpaint").params == {}
    for bad, message in (("superres:scale=big", "must be int"), ("superres:sharpness=3", "no parameter"),
                         ("blur", "unknown tool"), ("superres:scale", "key=value")):
        with pytest.raises(BatchError, match=message):
            ChainStep.parse(bad)


def test_bad_files_are_reported_and_the_batch_goes_on(tmp_path):
    make_folder(tmp_path / "in")
    before = digest(tmp_path / "in")
    report = BatchRunner(options(tmp_path)).run()
    assert report.count("done") == 5 and report.count("failed") == 3 and not report.ok
    reasons = {f.input: f.reason for f in report.files if f.status == "failed"}
    assert "empty" in reasons["empty.jpg"] and "truncated" in reasons["cut.png"]
    assert "notes.png" in reasons
    assert digest(tmp_path / "in") == before  # inputs untouched
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outputs == [f"img{i}.png" for i in range(5)]
    assert read_image(tmp_path / "out" / "img0.png").pixels.shape[:2] == (48, 64)


def test_naming_and_format_options(tmp_path):
    make_folder(tmp_path / "in", count=2, broken=False)
    Image.new("RGB", (8, 8)).save(tmp_path / "in" / "old.bmp")
    opts = options(tmp_path, naming="{stem}_{chain}.{ext}", format="jpeg", quality=80)
    report = BatchRunner(opts).run()
    assert report.ok
    assert sorted(p.name for p in opts.output_dir.iterdir()) == ["img0_superres.jpg", "img1_superres.jpg",
                                                                  "old_superres.jpg"]
    same = options(tmp_path, format="same")
    assert output_path(same, tmp_path / "in" / "a.webp").name == "a.webp"
    assert output_path(same, tmp_path / "in" / "old.bmp").name == "old.png"  # BMP is read, not written


def test_two_inputs_with_one_output_name_do_not_overwrite_each_other(tmp_path):
    make_folder(tmp_path / "in", count=1, broken=False)
    Image.new("RGB", (8, 8)).save(tmp_path / "in" / "img0.jpg")
    report = BatchRunner(options(tmp_path, format="png")).run()
    assert [f.status for f in report.files] == ["done", "failed"]
    assert "already writes img0.png" in report.files[1].reason


def test_cancel_then_skip_existing_finishes_the_rest(tmp_path):
    make_folder(tmp_path / "in", count=12, broken=False)
    token = CancelToken()
    done = []

    def on_file(result):
        done.append(result)
        if len(done) == 2:
            token.cancel()

    report = BatchRunner(options(tmp_path), cancel=token, on_file=on_file).run()
    # writers already encoding when Cancel comes finish their file; nothing else starts
    assert report.cancelled and 2 <= report.count("done") <= 5
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(written) == report.count("done")  # every output is whole; no temporary file is left
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]

    second = BatchRunner(options(tmp_path, skip_existing=True)).run()
    assert second.ok and second.count("skipped") == len(written) and second.count("done") == 12 - len(written)
    assert len(list((tmp_path / "out").iterdir())) == 12


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    make_folder(tmp_path / "in", count=2, broken=False)
    import PIL.PngImagePlugin

    real_save = PIL.PngImagePlugin._save

    def failing_save(im, fp, filename, *args, **kwargs):
        if ".img0.png" in str(filename):  # by name: the writer threads may encode the two files in either order
            fp.write(b"\x89PNG partial")
            raise OSError("disk full")
        return real_save(im, fp, filename, *args, **kwargs)

    monkeypatch.setattr(PIL.PngImagePlugin, "_save", failing_save)
    monkeypatch.setitem(PIL.Image.SAVE, "PNG", failing_save)
    report = BatchRunner(options(tmp_path)).run()
    assert [f.status for f in report.files] == ["failed", "done"]
    assert "disk full" in report.files[0].reason
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img1.png"]


def test_masks_come_from_files_beside_the_images(tmp_path):
    make_folder(tmp_path / "in", count=3, broken=False)
    mask = np.zeros((24, 32), np.uint8)
    mask[5:15, 5:15] = 255
    Image.fromarray(mask).save(tmp_path / "in" / "img1.mask.png")
    opts = options(tmp_path, chain=[ChainStep("inpaint"), ChainStep("superres", {"scale": 2})])
    assert [p.name for p in find_inputs(opts)] == ["img0.png", "img1.png", "img2.png"]  # the mask is no input
    report = BatchRunner(opts).run()
    status = {f.input: f.status for f in report.files}
    assert status == {"img0.png": "skipped", "img1.png": "done", "img2.png": "skipped"}
    assert "img0.mask.png" in report.files[0].reason


def test_masks_follow_an_earlier_resize_in_the_chain(tmp_path):
    make_folder(tmp_path / "in", count=1, broken=False)
    mask = np.zeros((24, 32), np.uint8)
    mask[5:15, 5:15] = 255
    Image.fromarray(mask).save(tmp_path / "in" / "img0.mask.png")
    opts = options(tmp_path, chain=[ChainStep("superres", {"scale": 2}), ChainStep("inpaint")])
    assert BatchRunner(opts).run().ok


def test_recursive_keeps_sub_folders_and_never_reads_its_own_output(tmp_path):
    make_folder(tmp_path / "in" / "a", count=1, broken=False)
    make_folder(tmp_path / "in" / "b", count=1, broken=False)
    opts = BatchOptions(tmp_path / "in", tmp_path / "in" / "out", [ChainStep("superres", {"scale": 2})],
                        recursive=True)
    assert BatchRunner(opts).run().count("done") == 2
    assert (tmp_path / "in" / "out" / "a" / "img0.png").exists()
    assert len(find_inputs(opts)) == 2


def test_presets_round_trip(tmp_path):
    opts = options(tmp_path, naming="{stem}-big.{ext}", format="webp", quality=70, keep_metadata=False)
    save_preset(opts, tmp_path / "p.json")
    restored = options(tmp_path, chain=[]).with_preset(load_preset(tmp_path / "p.json"))
    assert restored == opts
    with pytest.raises(BatchError, match="unknown settings"):
        opts.with_preset({"colour": "blue"})
    with pytest.raises(BatchError, match="list of"):
        opts.with_preset({"chain": ["superres"]})


def test_options_that_cannot_work_are_refused_before_starting(tmp_path):
    make_folder(tmp_path / "in", count=1, broken=False)
    for bad, message in ((dict(naming="{name}.png"), "naming"), (dict(mask_pattern="{name}.png"), "mask pattern"),
                         (dict(format="gif"), "format"), (dict(chain=[]), "empty")):
        with pytest.raises(BatchError, match=message):
            options(tmp_path, **bad).validate()
    with pytest.raises(BatchError, match="must differ"):
        BatchOptions(tmp_path / "in", tmp_path / "in", [ChainStep("superres")]).validate()


def test_each_model_loads_once_per_batch(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import save_file

    import ganstudio.models.loading as loading
    from ganstudio.models import configure_registry

    models = tmp_path / "models"
    models.mkdir()
    from ganstudio.models.arch.srresnet import SRResNet

    net = SRResNet(num_blocks=1, channels=4, scale=2)
    save_file(net.state_dict(), str(models / "tiny.safetensors"))
    (models / "tiny.json").write_text(json.dumps({
        "name": "tiny", "task": "superres", "scale": 2,
        "architecture": {"name": "srresnet", "params": {"num_blocks": 1, "channels": 4, "scale": 2}}}))
    configure_registry(models)
    builds = []
    real_build = loading._build
    monkeypatch.setattr(loading, "_build", lambda model: builds.append(model.name) or real_build(model))
    make_folder(tmp_path / "in", count=4, broken=False)
    report = BatchRunner(options(tmp_path, chain=[ChainStep("superres", {"model": "tiny", "scale": 2})])).run()
    assert report.count("done") == 4 and builds == ["tiny"]
    assert torch.is_tensor(next(net.parameters()))


def test_pause_holds_the_device_stage(tmp_path):
    make_folder(tmp_path / "in", count=3, broken=False)
    finished = []
    runner = BatchRunner(options(tmp_path), on_file=finished.append)
    runner.pause()
    thread = threading.Thread(target=runner.run)
    started = time.monotonic()
    thread.start()
    thread.join(0.5)
    assert thread.is_alive() and finished == []
    runner.resume()
    thread.join(30)
    wall = time.monotonic() - started
    assert len(finished) == 3
    # the pause is left out of the rates and the report's elapsed time
    assert runner.active_seconds() < wall - 0.4


def test_cli_batch_exit_codes_report_and_preset(tmp_path, capsys):
    make_folder(tmp_path / "in", count=2)
    out, report = tmp_path / "out", tmp_path / "report.json"
    code = main(["batch", str(tmp_path / "in"), "-o", str(out), "--chain", "superres:model=bicubic,scale=2",
                 "--report", str(report), "--save-preset", str(tmp_path / "p.json"), "-q"])
    assert code == 1
    err = capsys.readouterr().err
    assert "failed: empty.jpg" in err and "2 done, 0 skipped, 3 failed" in err
    summary = json.loads(report.read_text())["summary"]
    assert summary == {"done": 2, "skipped": 0, "failed": 3, "not_started": 0}

    good = make_folder(tmp_path / "good", count=2, broken=False)
    code = main(["batch", str(good), "-o", str(tmp_path / "out2"), "--preset", str(tmp_path / "p.json"),
                 "--format", "jpeg", "-q"])
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["img0.jpg", "img1.jpg"]
    assert read_image(tmp_path / "out2" / "img0.jpg").pixels.shape[:2] == (48, 64)  # the preset's chain ran

    assert main(["batch", str(tmp_path / "missing"), "-o", str(out), "--chain", "superres"]) == 2
    assert main(["batch", str(good), "-o", str(out), "--chain", "sharpen"]) == 2
    assert main(["batch", str(good), "-o", str(out)]) == 2  # no chain


def test_ctrl_c_cancels_the_cli_batch_cleanly(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):  # enough work that the interrupt lands mid-run on any machine
        Image.fromarray((rng.random((160, 160, 3)) * 255).astype(np.uint8)).save(folder / f"p{i:02d}.png")
    out, report = tmp_path / "out", tmp_path / "report.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "ganstudio", "batch", str(folder), "-o", str(out), "--chain",
         "superres:model=lanczos,scale=4", "--report", str(report), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(p.suffix == ".png" for p in out.iterdir())):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "cancelled" in err
    data = json.loads(report.read_text())
    assert data["cancelled"] and data["summary"]["not_started"] > 0
    written = [p for p in out.iterdir()]
    assert all(not p.name.startswith(".") for p in written)  # no half-written temporary files
    assert len(written) == data["summary"]["done"]
    for path in written:
        assert read_image(path).pixels.shape[:2] == (640, 640)
