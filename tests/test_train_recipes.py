"""What the training wizard runs: each kind's command lines (as the real CLI parses them), starting from shipped
weights when they exist, and the loop options that serve it (--init for inpainting and CycleGAN, export names)."""
from __future__ import annotations

import contextlib
import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from ganstudio.cli import _build_parser
from ganstudio.models import configure_registry
from ganstudio.models.arch.cyclegan import CycleGANGenerator
from ganstudio.models.arch.inpaint_gated import GatedInpaintNet
from ganstudio.train import checkpoint as ckpt
from ganstudio.train import cyclegan, inpaint, probe, recipes
from ganstudio.train.common import Precision
from ganstudio.train.data import augment
from ganstudio.train.dcgan import DCGANConfig
from ganstudio.train.events import EventWriter
from ganstudio.train.pix2pix import Pix2PixConfig
from ganstudio.train.recipes import PRESETS, RECIPES, Machine, Output, RunSpec
from ganstudio.train.superres import SuperResConfig

CPU = Machine(False, "CPU, test")
GPU = Machine(True, "GPU, test", 24.0)
CONFIGS = {"superres": SuperResConfig, "inpaint": inpaint.InpaintConfig, "cyclegan": cyclegan.CycleGANConfig,
           "dcgan": DCGANConfig, "pix2pix": Pix2PixConfig}


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """Training sets torch's global thread count: give later tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _photos(folder: Path, count: int = 6, size: tuple[int, int] = (40, 44)) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _parse(args: list[str]):
    return _build_parser().parse_args(["train", *args])


@pytest.mark.parametrize("kind", list(RECIPES))
@pytest.mark.parametrize("machine", [CPU, GPU], ids=["cpu", "gpu"])
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_builds_a_command_the_loop_accepts(kind: str, machine: Machine, preset: str,
                                                        tmp_path: Path) -> None:
    recipe = RECIPES[kind]
    settings = recipe.preset(preset, machine, from_base=False)
    assert recipe.settings_problem(settings) == ""
    folders = [tmp_path / "a", tmp_path / "b"][: recipe.folders]
    spec = recipe.build_spec(folders, settings, False, tmp_path / "run", 200, ["sun", "snow"])
    command = spec.command(resume=True)
    assert command[:4] == ["-m", "ganstudio", "train", recipe.train_task] and command[-1] == "--resume"
    args = _parse(command[3:])
    assert args.background, "the wizard trains at background priority, beside the editor"
    config_type = CONFIGS[kind]
    config = config_type(**{name: getattr(args, name) for name in config_type.__dataclass_fields__})
    assert config.steps == settings.steps == spec.total and config.batch == settings.batch
    assert config.checkpoint_every == settings.checkpoint_every and config.out == str(tmp_path / "run")
    # each loop's own default precision; the CPU trains in fp32 whatever is asked
    assert config.precision == settings.precision == ("bf16" if kind == "inpaint" and machine.cuda else "fp32")
    # previews at least ten times a run, whatever its length
    assert 0 < config.sample_every <= max(1, settings.steps // 10)
    assert config.augment == settings.augment == recipe.default_augment
    assert settings.crop == recipe.crop_for(machine) in recipe.crop_sizes

    outputs = recipe.default_outputs(spec)
    export = _parse(recipe.export_args(spec, outputs, tmp_path / "models", "test", latest=False))
    assert export.train_task.endswith("export") and export.run == str(tmp_path / "run")


def test_preset_sizes_grow_with_the_preset_and_the_machine() -> None:
    for recipe in RECIPES.values():
        quick, best = (recipe.preset(p, CPU, False) for p in ("quick", "best"))
        assert quick.steps < best.steps and quick.channels <= best.channels
        assert recipe.preset("quick", GPU, False).steps > quick.steps


def test_translation_names_its_models_after_the_domains(tmp_path: Path) -> None:
    recipe = RECIPES["cyclegan"]
    spec = recipe.build_spec([tmp_path / "Sun", tmp_path / "Snow"], recipe.preset("quick", CPU, False),
                             False, tmp_path / "run", 20, ["sun", "snow-fall"])
    assert spec.data_b == str(tmp_path / "Snow") and spec.names == ["sun", "snow-fall"]
    assert recipe.default_outputs(spec) == [Output("sun2snow-fall", "Sun → Snow fall"),
                                            Output("snow-fall2sun", "Snow fall → Sun")]
    args = _parse(recipe.export_args(spec, [Output("warm", "Warm"), Output("cold", "Cold")], tmp_path, "test",
                                     latest=False))
    assert args.names == ["warm", "cold"] and args.titles == ["Warm", "Cold"]
    assert str(tmp_path / "Sun") in args.licence and str(tmp_path / "Snow") in args.licence
    assert args.run == spec.run_dir


def test_a_run_spec_survives_a_restart_and_old_ones_read_as_super_resolution(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    spec = RunSpec(str(run), "a", ["--data", "a"], 10, "cyclegan", "b", ["x", "y"])
    spec.save()
    assert RunSpec.remembered() == spec
    (run / "wizard.json").write_text(json.dumps({"run_dir": str(run), "data": "a", "args": [], "total": 5}))
    assert RunSpec.remembered().kind == "superres"
    (run / "wizard.json").write_text(json.dumps({"run_dir": str(run), "data": "a", "args": [], "total": 5,
                                                 "kind": "a kind from a newer version"}))
    assert RunSpec.remembered() is None
    RunSpec.forget()
    assert RunSpec.remembered() is None


def _ship(folder: Path, name: str, task: str, arch: str, params: dict, module: torch.nn.Module) -> Path:
    weights = folder / f"{name}.safetensors"
    card = {"name": name, "title": name, "task": task, "architecture": {"name": arch, "params": params},
            "data": {"licence": f"{name} terms"}}
    ckpt.export_safetensors(module, weights, card)
    return weights


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch) -> Path:
    """A pretrained/ folder with tiny cat2dog, dog2cat and inpainting models, as a later release will ship."""
    folder = tmp_path / "pretrained"
    torch.manual_seed(1234)  # not the runs' seed 0: a run that ignored --init would start from other weights
    for name in ("cat2dog", "dog2cat"):
        _ship(folder, name, "translate", "cyclegan-resnet", {"ngf": 4, "n_blocks": 1}, CycleGANGenerator(4, 1))
    _ship(folder, "inpaint-gan", "inpaint", "inpaint_gated", {"channels": 4, "levels": 2, "dilations": [2]},
          GatedInpaintNet(4, 2, (2,)))
    monkeypatch.setenv("GANSTUDIO_PRETRAINED", str(folder))
    configure_registry(tmp_path / "models")
    return folder


def test_shipped_models_become_the_start_of_a_run(shipped: Path, tmp_path: Path) -> None:
    translate, fill = RECIPES["cyclegan"], RECIPES["inpaint"]
    assert [m.name for m in translate.base_models()] == ["cat2dog", "dog2cat"]
    assert translate.base_size() == (1, 4) and fill.base_size() == (2, 4)
    spec = translate.build_spec([tmp_path / "a", tmp_path / "b"], translate.preset("quick", CPU, True), True,
                                tmp_path / "run", 40, ["cats", "dogs"])
    args = _parse(["cyclegan", *spec.args])
    assert args.init_ab == str(shipped / "cat2dog.safetensors") and args.init_ba == str(shipped / "dog2cat.safetensors")
    assert (args.ngf, args.blocks) == (4, 1)
    licence = _parse(translate.export_args(spec, translate.default_outputs(spec), tmp_path, "t", False)).licence
    assert "Fine-tuned from cat2dog.safetensors (cat2dog terms)" in licence

    spec = fill.build_spec([tmp_path / "a"], fill.preset("quick", CPU, True), True, tmp_path / "run", 40, [])
    args = _parse(["inpaint", *spec.args])
    assert args.init == str(shipped / "inpaint-gan.safetensors") and args.dilations == [2] and args.levels == 2


def test_without_shipped_models_runs_start_from_scratch(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "pretrained").mkdir()
    monkeypatch.setenv("GANSTUDIO_PRETRAINED", str(tmp_path / "pretrained"))  # a build that ships none
    configure_registry(tmp_path / "models")
    for kind in ("inpaint", "cyclegan", "dcgan"):
        assert RECIPES[kind].base_models() == [] and RECIPES[kind].base_size() is None
    assert "no shipped inpainting model" in RECIPES["inpaint"].no_base_text()
    assert "cat2dog.safetensors is missing" in RECIPES["cyclegan"].no_base_text()


def test_cyclegan_starts_both_generators_from_given_weights_and_exports_under_chosen_names(
        shipped: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _photos(tmp_path / "cats"), _photos(tmp_path / "dogs")
    config = cyclegan.CycleGANConfig(domain_a=str(a), domain_b=str(b), out=str(tmp_path / "run"), name_a="cat",
                                     name_b="dog", ngf=4, blocks=1, ndf=4, load_size=36, crop=32, sample_images=0,
                                     steps=1, lr=1e-9, threads=1, init_ab=str(shipped / "cat2dog.safetensors"),
                                     init_ba=str(shipped / "dog2cat.safetensors"))
    assert cyclegan.train(config, events=EventWriter()) == 0
    state = ckpt.load_latest(tmp_path / "run")
    for key, name in (("g_ab", "cat2dog"), ("g_ba", "dog2cat")):
        shipped_weights = load_file(str(shipped / f"{name}.safetensors"))
        assert all(torch.allclose(state[key][k], v, atol=1e-6) for k, v in shipped_weights.items()), key

    cards = cyclegan.export(tmp_path / "run", tmp_path / "models", "test", "terms", names=("warm", "cold"),
                            titles=("Warm", "Cold"))
    assert [c.name for c in cards] == ["warm.json", "cold.json"]
    assert json.loads(cards[1].read_text())["title"] == "Cold"
    # the translate tool's default short side is the one the photos were trained at (36 px here, the tool's 64 up)
    assert json.loads(cards[0].read_text())["working_size"] == 64
    trained_at_143 = cyclegan.build_card(replace(config, load_size=143), "c", "C", {}, "terms")
    assert trained_at_143["working_size"] == 144
    with pytest.raises(ValueError, match="model name"):
        cyclegan.export(tmp_path / "run", tmp_path / "models", "test", "terms", names=("Warm Up", "cold"))

    config.init_ab, config.out = str(shipped / "inpaint-gan.safetensors"), str(tmp_path / "run2")
    with pytest.raises(RuntimeError, match="state_dict"):
        cyclegan.train(config, events=EventWriter())
    capsys.readouterr()


def test_inpainting_starts_from_given_weights(shipped: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.setenv("GANSTUDIO_LPIPS_WEIGHTS", str(tmp_path / "absent.npz"))
    data = _photos(tmp_path / "photos")
    init = shipped / "inpaint-gan.safetensors"
    config = inpaint.InpaintConfig(data=str(data), out=str(tmp_path / "run"), channels=4, levels=2, dilations=(2,),
                                   disc_channels=4, crop=32, batch=2, steps=1, lr=1e-9, val_images=0, threads=1,
                                   init=str(init))
    assert inpaint.train(config, events=EventWriter()) == 0
    trained = ckpt.load_latest(tmp_path / "run")["generator"]
    assert all(torch.allclose(trained[k], v, atol=1e-6) for k, v in load_file(str(init)).items())
    card = json.loads(inpaint.export(tmp_path / "run", tmp_path / "m" / "x.safetensors", "x", "X", "test",
                                     use_best=False).read_text())
    assert card["data"]["folder"] == str(data)
    assert "Fine-tuned from inpaint-gan.safetensors (inpaint-gan terms)" in card["data"]["licence"]
    capsys.readouterr()


def test_precision_is_autocast_on_a_gpu_only_and_fp32_is_the_plain_loop(monkeypatch) -> None:
    cpu = torch.device("cpu")
    for asked in ("fp32", "auto", "bf16", "fp16"):
        stream = io.StringIO()
        precision = Precision(asked, cpu, EventWriter(stream))
        assert precision.name == "fp32" and precision.scaler is None and precision.state() == {}
        assert isinstance(precision.autocast(), contextlib.nullcontext)
        warnings = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
        assert warnings == ([f"{asked} applies on a CUDA GPU only: training on the cpu in fp32"]
                            if asked in ("bf16", "fp16") else [])
    with pytest.raises(ValueError, match="precision"):
        Precision("fp8", cpu)
    with pytest.raises(ValueError, match="precision"):
        SuperResConfig(data="", out="", precision="half")

    # on a GPU with bf16, auto and bf16 autocast to bf16 without a loss scaler (no GPU needed to choose)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    for asked in ("auto", "bf16"):
        precision = Precision(asked, torch.device("cuda"))
        assert precision.name == "bf16" and precision.scaler is None
    assert Precision("fp32", torch.device("cuda")).name == "fp32"


def test_every_loop_takes_a_precision_and_inpainting_keeps_its_old_flags(tmp_path: Path) -> None:
    common = ["--data", "d", "--out", "o"]
    for task in ("superres", "dcgan"):
        assert _parse([task, *common]).precision == "fp32"
        assert _parse([task, *common, "--precision", "auto"]).precision == "auto"
    cyclegan_args = ["cyclegan", "--domain-a", "a", "--domain-b", "b", "--out", "o"]
    assert _parse(cyclegan_args).precision == "fp32"
    assert _parse([*cyclegan_args, "--precision", "fp16"]).precision == "fp16"
    assert _parse(["inpaint", *common]).precision == "bf16"
    assert _parse(["inpaint", *common, "--no-bf16"]).precision == "fp32"
    assert _parse(["inpaint", *common, "--bf16"]).precision == "bf16"
    with pytest.raises(SystemExit):
        _parse(["superres", *common, "--precision", "half"])


#: What each loop did before it had --augment, and still does by default.
LOOP_AUGMENTS = {"superres": "dihedral", "inpaint": "dihedral", "cyclegan": "hflip", "dcgan": "color,translation",
                 "pix2pix": "hflip"}


def _without(args: list[str], flag: str) -> list[str]:
    index = args.index(flag)
    return args[:index] + args[index + 2:]


@pytest.mark.parametrize("kind", list(RECIPES))
def test_the_augmentation_chosen_reaches_the_loop_whose_default_is_unchanged(kind: str, tmp_path: Path) -> None:
    recipe = RECIPES[kind]
    assert recipe.default_augment == LOOP_AUGMENTS[kind] and len(recipe.augments) == 3
    settings = recipe.preset("quick", CPU, False)
    folders = [tmp_path / "a", tmp_path / "b"][: recipe.folders]
    args = recipe.build_spec(folders, settings, False, tmp_path / "run", 200, ["sun", "snow"]).args
    assert _parse([kind, *_without(args, "--augment")]).augment == LOOP_AUGMENTS[kind], "the loop's own default"
    for value in recipe.augments:
        spec = recipe.build_spec(folders, replace(settings, augment=value), False, tmp_path / "run", 200,
                                 ["sun", "snow"])
        parsed = _parse([kind, *spec.args])
        config = CONFIGS[kind](**{name: getattr(parsed, name) for name in CONFIGS[kind].__dataclass_fields__})
        assert config.augment == value
    assert recipe.settings_problem(replace(settings, augment="sideways")) == "Unknown augmentation 'sideways'."


def test_augment_flags_refuse_unknown_values_and_dcgan_takes_none() -> None:
    with pytest.raises(SystemExit):
        _parse(["superres", "--data", "d", "--out", "o", "--augment", "sideways"])
    with pytest.raises(ValueError, match="augment"):
        cyclegan.CycleGANConfig(domain_a="a", domain_b="b", out="o", augment="rot")
    assert DCGANConfig(data="d", out="o", augment="none").augment_policies == ()


def test_augmentations_draw_from_torch_as_the_loops_did_before() -> None:
    crop = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)

    def variants(kind: str) -> set[bytes]:
        torch.manual_seed(0)
        return {np.ascontiguousarray(augment(crop, kind)).tobytes() for _ in range(200)}

    assert variants("none") == {crop.tobytes()}
    assert variants("hflip") == {crop.tobytes(), crop[:, ::-1].copy().tobytes()}
    assert len(variants("dihedral")) == 8
    # hflip draws one number, dihedral two: a run's random stream (and a resumed one's) is what it was
    for kind, draws in (("none", 0), ("hflip", 1), ("dihedral", 2)):
        torch.manual_seed(1)
        augment(crop, kind)
        after = torch.randint(0, 10**6, ()).item()
        torch.manual_seed(1)
        for _ in range(draws):
            torch.randint(0, 2, ())
        assert torch.randint(0, 10**6, ()).item() == after, kind
    with pytest.raises(ValueError, match="augmentation"):
        augment(crop, "sideways")


def test_probe_seconds_per_step_leaves_out_the_first_step() -> None:
    events = [{"event": "start"}, {"event": "step", "step": 1, "it_per_s": 0.1},
              {"event": "step", "step": 2, "it_per_s": 2.0}, {"event": "step", "step": 3, "it_per_s": 4.0}]
    assert probe.seconds_per_step(events) == pytest.approx((0.5 + 0.25) / 2)
    with pytest.raises(RuntimeError, match="out of memory"):
        probe.seconds_per_step([{"event": "step", "step": 1, "it_per_s": 1.0},
                                {"event": "error", "message": "out of memory"}])


@pytest.mark.parametrize("kind", list(RECIPES))
def test_a_speed_probe_times_the_runs_own_command_on_generated_pictures(kind: str, tmp_path: Path,
                                                                       monkeypatch) -> None:
    monkeypatch.setenv("GANSTUDIO_LPIPS_WEIGHTS", str(tmp_path / "absent.npz"))
    monkeypatch.setattr(recipes, "_threads", lambda: ["--threads", "1"])
    recipe = RECIPES[kind]
    settings = replace(recipe.preset("best", CPU, False), batch=3, blocks=1, channels=4, crop=recipe.crop_sizes[0],
                       augment=list(recipe.augments)[-1])
    folders = [tmp_path / "absent-a", tmp_path / "absent-b"][: recipe.folders]
    spec = recipe.build_spec(folders, settings, False, tmp_path / "run", 200, ["sun", "snow"])
    scratch = tmp_path / "scratch"
    seconds = probe.measure(kind, spec.args, scratch)
    assert 0 < seconds < 60
    config = json.loads((scratch / "run" / "config.json").read_text())
    # the run's settings, for a few steps, on enough generated pictures for a whole batch
    assert config["batch"] == 3 and config["steps"] == probe.PROBE_STEPS and config["augment"] == settings.augment
    assert config.get("crop", config.get("size")) == settings.crop
    for flag, folder in zip(recipe.data_flags, ("pictures0", "pictures1")):
        assert config[flag[2:].replace("-", "_")] == str(scratch / folder)
        assert len(list((scratch / folder).glob("*.png"))) == 3
    assert not (scratch / "run" / "samples").exists(), "no previews"
    assert not (tmp_path / "run").exists() and not folders[0].exists()


def test_the_probe_command_prints_one_event(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert probe.main(["superres", "--data", "d", "--out", str(tmp_path / "run"), "--crop", "8", "--batch", "1",
                       "--blocks", "1", "--channels", "4", "--threads", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["seconds_per_step"] > 0
    assert probe.main(["superres", "--data", "d", "--out", "o", "--crop", "6"]) == 1
    error = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert error["event"] == "error" and "multiple of the scale" in error["message"]


def test_run_clock_schedules_periodic_work_and_checkpoints_a_stopped_run_once() -> None:
    from ganstudio.train.common import RunClock, StopRequest
    from ganstudio.train.events import EventWriter

    clock = RunClock(total=10, step=3, wall_time=5.0)
    saves: list[int] = []

    def save() -> None:
        saves.append(clock.step)
        clock.saved_step = clock.step

    stop = StopRequest()
    due = []
    while not clock.at_end:
        clock.step += 1
        due.append((clock.step, clock.due(4), clock.due(0)))
        if clock.end_step(stop, save, 4):
            break
    assert [step for step, every_4, never in due if every_4] == [4, 8, 10]  # and the last step
    assert not any(never for _, _, never in due)
    assert saves == [4, 8, 10] and clock.wall_time > 5.0
    out = io.StringIO()
    stop.requested = True
    assert clock.finish(stop, save, EventWriter(out)) == 0
    assert saves == [4, 8, 10], "the step it stopped at was saved already"
    clock.step = 11
    clock.finish(stop, save, EventWriter(out))
    assert saves[-1] == 11
    done = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [d["event"] for d in done] == ["done", "done"] and done[-1]["stopped"] and done[-1]["step"] == 11
