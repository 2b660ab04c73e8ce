"""What the training wizard runs for each kind of model: presets sized for the machine, the ``ganstudio train``
command line of a run, and the export command that puts the result into the user's model folder.

No Qt here: the wizard (``ganstudio/ui/train_wizard.py``) shows these choices, and scripts and benchmarks can build
the very same command lines without a display.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ganstudio.atomic import write_text_atomic
from ganstudio.config import config_dir, default_model_dir
from ganstudio.models import ModelDescriptor, get_registry
from ganstudio.train.common import data_licence
from ganstudio.train.folder_check import MIN_IMAGES, MIN_PAIRS

PRESETS = ("quick", "balanced", "best")
#: Model names (file stems): what the registry and the cards accept.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def slug(text: str, fallback: str) -> str:
    """``text`` as a model-name part: lower case, runs of anything else turned into one ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or fallback


def remembered_run_file() -> Path:
    return config_dir() / "training-run.json"


def runs_dir() -> Path:
    return default_model_dir().parent / "runs"


@dataclass
class Machine:
    """What presets are sized for: CPU, or a CUDA GPU and its memory."""
    cuda: bool
    name: str
    memory_gb: float = 0.0
    #: CUDA GPUs: with more than one, a run may train on all of them (one process each, :mod:`ganstudio.train.engine`).
    gpus: int = 0

    @classmethod
    def detect(cls) -> Machine:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            return cls(True, props.name, props.total_memory / 2**30, torch.cuda.device_count())
        return cls(False, f"CPU, {os.cpu_count() or 1} cores")

    def describe(self) -> str:
        if not self.cuda:
            return self.name
        return f"{self.gpus} × {self.name} ({self.memory_gb:.0f} GB each)" if self.gpus > 1 else \
            f"{self.name} ({self.memory_gb:.0f} GB)"


@dataclass
class Settings:
    """What a run is set up with. ``crop`` (the training crop, or the picture size of a generator) and ``augment``
    (a key of the recipe's :attr:`Recipe.augments`; empty: the recipe's default) are chosen on the Data page, the
    rest on the Settings page. ``blocks`` and ``channels`` are the model-size knobs of each kind (see the recipe's
    labels); ``precision`` one of :data:`ganstudio.train.common.PRECISIONS` (autocast on a CUDA GPU; the CPU always
    trains in fp32)."""
    steps: int
    batch: int
    crop: int
    lr: float
    blocks: int
    channels: int
    checkpoint_every: int
    precision: str = "fp32"
    augment: str = ""


@dataclass(frozen=True)
class Output:
    """One model a finished run is saved as."""
    name: str
    title: str


@dataclass
class RunSpec:
    """A run as the Train page starts it; saved as ``wizard.json`` in the run folder for Resume after a restart.

    ``data_b`` and ``names`` (the two domains' short names) are used by two-folder kinds only.
    """
    run_dir: str
    data: str
    args: list[str]
    total: int
    kind: str = "superres"
    data_b: str = ""
    names: list[str] = field(default_factory=list)
    #: Training processes, one per GPU (torchrun); 1 is a plain run.
    processes: int = 1

    @property
    def recipe(self) -> Recipe:
        return RECIPES[self.kind]

    def command(self, resume: bool) -> list[str]:
        """The Python arguments of the run: ``ganstudio train`` itself, or under torchrun with one process per GPU
        (whose SIGTERM on Pause reaches every process; they checkpoint together)."""
        launcher = (["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={self.processes}"]
                    if self.processes > 1 else [])
        # at background priority: the editor stays smooth while its wizard trains
        return [*launcher, "-m", "ganstudio", "train", self.recipe.train_task, *self.args, "--background",
                *(["--resume"] if resume else [])]

    def save(self) -> None:
        write_text_atomic(Path(self.run_dir) / "wizard.json", json.dumps(asdict(self), indent=2) + "\n")
        remembered_run_file().parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(remembered_run_file(), json.dumps({"run_dir": self.run_dir}) + "\n")

    @classmethod
    def remembered(cls) -> RunSpec | None:
        """The last run the wizard started and has not exported or cancelled, if its folder still exists."""
        try:
            run_dir = Path(json.loads(remembered_run_file().read_text(encoding="utf-8"))["run_dir"])
            spec = cls(**json.loads((run_dir / "wizard.json").read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return spec if spec.kind in RECIPES else None

    @staticmethod
    def forget() -> None:
        remembered_run_file().unlink(missing_ok=True)


def _every(steps: int) -> int:
    """Validation and sample cadence: ten times a run, at most every 500 steps."""
    return max(1, min(500, steps // 10))


def checkpoint_every(steps: int) -> int:
    """Twenty checkpoints a run, at least 10 steps apart: what Pause or a crash can lose at most."""
    return max(10, steps // 20)


def _log_every(steps: int) -> int:
    return max(1, min(10, steps // 100))


def _threads() -> list[str]:
    return ["--threads", str(os.cpu_count() or 2)]


class Recipe:
    """One kind of model the wizard trains. Subclasses fill in the class attributes and the methods."""

    kind: str
    #: ``ganstudio train <train_task>``
    train_task: str
    #: The registry task of the exported model(s).
    model_task: str
    title: str
    explain: str
    #: Where the saved model shows up, for the Finish page.
    where: str
    folders = 1
    data_hint = ("A folder of at least {min_images} photos of the kind you want (sub-folders count too). Nothing in "
                 "it is changed.")
    crop_label = "Crop size"
    #: What one training example is called: "8 crops of 96 px".
    crop_noun = "crop"
    crop_step = 4
    #: The Data page's crop choices, smallest first: multiples of what the loop needs (``crop_step``, and for
    #: inpainting every resolution-stage count the Settings page allows).
    crop_sizes: tuple[int, ...] = (48, 64, 96, 128, 192, 256)
    #: What the crop is, under the choice.
    crop_hint = ""
    #: ``--augment`` choices: value -> (menu text, what it does), the default first.
    augments: dict[str, tuple[str, str]] = {
        "dihedral": ("Flips and 90° turns",
                     "Each crop is flipped and turned at random (8 ways): the most variety from few photos. For "
                     "pictures without an up: landscapes, textures, aerial photos, close-ups."),
        "hflip": ("Left-right flips only",
                  "Crops are mirrored left-right at random, never turned or turned upside down. For pictures with "
                  "an up: faces, people, animals, buildings."),
        "none": ("None", "Crops are used as they are: for pictures a mirror image would falsify, such as text, "
                         "signs or maps."),
    }
    #: Labels of the two model-size knobs; ``None`` hides the first.
    blocks_label: str | None = "Residual blocks"
    blocks_range = (1, 64)
    channels_label = "Channels"
    channels_range = (4, 256)
    sample_hint = "Sample pictures appear here"
    #: What a sample grid shows, under it once one has arrived.
    sample_caption = "sample pictures"
    base_label = ""
    #: The run keeps its best-validating weights apart, so the Finish page can offer the latest ones instead.
    has_best = True
    #: Two-folder kinds: whether each folder's kind gets a short name (CycleGAN's model names are made of them),
    #: and whether the folders' files pair up by name (before/after).
    names_needed = True
    paired = False
    #: Usable photos (pairs, for a paired kind) a run needs.
    min_images = MIN_IMAGES
    #: The Data page's headings and placeholders of the two folders.
    headings = ("First kind of picture", "Second kind of picture")
    placeholders = ("Folder of the first kind of photos", "Folder of the second kind of photos")
    default_crop = 96
    #: The default crop on a CUDA GPU, where larger crops cost little.
    gpu_crop = 96
    #: The presets' precision on a CUDA GPU (the CPU always trains in fp32): the loop's own default.
    gpu_precision = "fp32"
    #: The flags of ``ganstudio train <train_task>`` that name the data folder(s), in :attr:`folders` order.
    data_flags: tuple[str, ...] = ("--data",)
    #: Flags that turn off what a speed probe must not spend time on (validation, previews; see
    #: :mod:`ganstudio.train.probe`).
    probe_flags: tuple[str, ...] = ()

    @property
    def default_augment(self) -> str:
        return next(iter(self.augments))

    def crop_for(self, machine: Machine) -> int:
        """The Data page's default crop on ``machine``."""
        return self.gpu_crop if machine.cuda else self.default_crop

    def crop_text(self, crop: int) -> str:
        """A crop choice as the menu shows it."""
        return f"{crop} px"

    def preset(self, preset: str, machine: Machine, from_base: bool) -> Settings:
        raise NotImplementedError

    def precision(self, machine: Machine) -> str:
        return self.gpu_precision if machine.cuda else "fp32"

    def min_side(self, crop: int) -> int:
        """The short side below which a photo is left out of training at this crop."""
        return crop

    def settings_problem(self, settings: Settings) -> str:
        """What is wrong with ``settings`` for this kind, in a sentence; empty when they are fine."""
        if settings.crop % self.crop_step:
            return f"The crop must be a multiple of {self.crop_step}."
        if settings.augment and settings.augment not in self.augments:
            return f"Unknown augmentation {settings.augment!r}."
        return ""

    def augment_args(self, settings: Settings) -> list[str]:
        return ["--augment", settings.augment or self.default_augment]

    def run_args(self, settings: Settings) -> list[str]:
        """The arguments every crop-trained family takes alike from the settings."""
        return ["--steps", str(settings.steps), "--batch", str(settings.batch), "--crop", str(settings.crop),
                *self.augment_args(settings), "--lr", str(settings.lr),
                "--checkpoint-every", str(settings.checkpoint_every), *_threads(), "--precision", settings.precision]

    def base_models(self) -> list[ModelDescriptor]:
        """The shipped model(s) a run can start from; empty when there is none."""
        return []

    def no_base_text(self) -> str:
        """Why the run starts from scratch, when :meth:`base_models` finds nothing."""
        return "This trains a new model from scratch on your photos."

    def base_size(self) -> tuple[int, int] | None:
        """(blocks, channels) fixed by the base model's architecture."""
        return None

    def run_name(self, folders: list[Path], names: list[str]) -> str:
        raise NotImplementedError

    def build_spec(self, folders: list[Path], settings: Settings, from_base: bool, run_dir: Path, usable: int,
                   names: list[str]) -> RunSpec:
        raise NotImplementedError

    def default_outputs(self, spec: RunSpec) -> list[Output]:
        raise NotImplementedError

    def export_args(self, spec: RunSpec, outputs: list[Output], model_dir: Path, machine: str,
                    latest: bool) -> list[str]:
        """``ganstudio train ...`` arguments that save the run as ``outputs`` into ``model_dir``."""
        output = outputs[0]
        return ["export", "--run", spec.run_dir, "--output", str(model_dir / f"{output.name}.safetensors"),
                "--name", output.name, "--title", output.title, "--machine", machine,
                *(["--latest"] if latest else [])]


class SuperResRecipe(Recipe):
    kind = "superres"
    train_task = "superres"
    model_task = "superres"
    title = "Fine-tune super-resolution on my photos"
    explain = ("Starts from the shipped “Faithful ×4” model and adapts it to your photos, so it enlarges pictures "
               "like them with more detail.")
    where = "the Super-resolution tool"
    data_hint = "A folder of at least {min_images} photos of the kind you want to enlarge (sub-folders count too). " \
                "Nothing in it is changed."
    sample_hint = "Sample pictures (bicubic | model | original) appear here"
    sample_caption = "held-out photos: bicubic | model | original"
    base_label = "Start from the shipped “Faithful ×4” model (recommended)"
    crop_hint = "Square pieces of your photos, at full size; the model learns to rebuild them from copies 4× " \
                "smaller. Larger crops show it more at once but make each step slower."
    probe_flags = ("--val-images", "0", "--sample-every", "0")
    #: The shipped model a fine-tune starts from.
    base_name = "srresnet-x4"
    scale = 4

    def crop_text(self, crop: int) -> str:
        return f"{crop} px (the model sees {crop // self.scale} px)"

    def preset(self, preset: str, machine: Machine, from_base: bool) -> Settings:
        level = PRESETS.index(preset)
        if machine.cuda:
            steps = (2_000, 10_000, 40_000)[level]
            batch = 32 if level == 2 and machine.memory_gb >= 12 else 16
        else:
            steps = (300, 1_500, 5_000)[level]
            batch = (8, 8, 16)[level]
        blocks, channels = ((8, 32), (12, 48), (16, 64))[level]
        # Fine-tuning moves already-good weights: a lower rate keeps it from forgetting what it knew.
        return Settings(steps, batch, self.crop_for(machine), 5e-5 if from_base else 2e-4, blocks, channels,
                        checkpoint_every(steps), self.precision(machine), self.default_augment)

    def base_models(self) -> list[ModelDescriptor]:
        return [m for m in get_registry().for_task("superres") if m.name == self.base_name]

    def base_size(self) -> tuple[int, int] | None:
        bases = self.base_models()
        return (bases[0].arch_params["num_blocks"], bases[0].arch_params["channels"]) if bases else None

    def run_name(self, folders: list[Path], names: list[str]) -> str:
        return f"{slug(folders[0].name, 'photos')}-x{self.scale}"

    def build_spec(self, folders: list[Path], settings: Settings, from_base: bool, run_dir: Path, usable: int,
                   names: list[str]) -> RunSpec:
        data = folders[0]
        args = ["--data", str(data), "--out", str(run_dir), "--scale", str(self.scale), *self.run_args(settings)]
        if from_base:
            base = self.base_models()[0]
            params = base.arch_params
            args += ["--init", str(base.weights), "--blocks", str(params["num_blocks"]),
                     "--channels", str(params["channels"]),
                     "--bicubic-residual" if params.get("bicubic_residual") else "--no-bicubic-residual"]
        else:
            args += ["--blocks", str(settings.blocks), "--channels", str(settings.channels)]
        # A tenth of the folder (at most 8) is held out, validated at 128 px centre crops: enough to follow
        # progress, and cheap enough that validation and previews cost under 5 % of the run (benchmarks/finetune.py).
        every = _every(settings.steps)
        args += ["--val-images", str(min(8, usable // 10)), "--val-crop", "128", "--val-every", str(every),
                 "--sample-every", str(every), "--log-every", str(_log_every(settings.steps))]
        return RunSpec(str(run_dir), str(data), args, settings.steps, self.kind)

    def default_outputs(self, spec: RunSpec) -> list[Output]:
        folder = Path(spec.data).name
        return [Output(f"{slug(folder, 'my-photos')}-x{self.scale}", f"{folder} ×{self.scale}")]


class InpaintRecipe(Recipe):
    kind = "inpaint"
    train_task = "inpaint"
    model_task = "inpaint"
    title = "Fine-tune inpainting on my photos"
    explain = ("Teaches a fill model your kind of pictures, so removed objects are filled with what belongs in "
               "photos like yours.")
    where = "the Inpaint tool"
    blocks_label = "Resolution stages"
    blocks_range = (1, 5)
    channels_range = (4, 128)
    sample_hint = "Sample fills (masked photo | fill | original) appear here"
    sample_caption = "held-out photos: masked photo | fill | original"
    base_label = "Start from the shipped inpainting model"
    # multiples of 32: whole at every resolution-stage count the Settings page allows (1 to 5)
    crop_sizes = (64, 96, 128, 192, 256, 384, 512)
    crop_hint = "Square windows of your photos (up to 1.5× the crop, resized to it) with holes drawn in them. " \
                "Larger crops give the model more surroundings to fill from but make each step slower."
    default_crop = 128
    gpu_crop = 256
    gpu_precision = "bf16"
    # the discriminator joins at once, so the probe times the steps of the run's last three quarters
    probe_flags = ("--val-images", "0", "--sample-every", "0", "--adv-start", "0")

    def preset(self, preset: str, machine: Machine, from_base: bool) -> Settings:
        level = PRESETS.index(preset)
        if machine.cuda:
            steps, batch = (2_000, 10_000, 40_000)[level], (8, 16, 16)[level]
        else:
            steps, batch = (300, 1_500, 5_000)[level], (4, 4, 8)[level]
        channels = (12, 16, 24)[level]
        return Settings(steps, batch, self.crop_for(machine), 1e-4 if from_base else 2e-4, 3, channels,
                        checkpoint_every(steps), self.precision(machine), self.default_augment)

    def min_side(self, crop: int) -> int:
        # the loop enlarges windows of photos down to half the crop, which costs little detail
        return crop // 2

    def settings_problem(self, settings: Settings) -> str:
        multiple = 2**settings.blocks
        if settings.crop % multiple:
            return f"The crop must be a multiple of {multiple} (2 to the power of the resolution stages)."
        return super().settings_problem(settings)

    def base_models(self) -> list[ModelDescriptor]:
        return [m for m in get_registry().for_task("inpaint")
                if m.source == "pretrained" and m.arch == "inpaint_gated"][:1]

    def no_base_text(self) -> str:
        return ("There is no shipped inpainting model yet, so this trains one from scratch on your photos. "
                "Fills look blurry at first; they improve with the longer presets.")

    def base_size(self) -> tuple[int, int] | None:
        bases = self.base_models()
        return (bases[0].arch_params["levels"], bases[0].arch_params["channels"]) if bases else None

    def run_name(self, folders: list[Path], names: list[str]) -> str:
        return f"{slug(folders[0].name, 'photos')}-inpaint"

    def build_spec(self, folders: list[Path], settings: Settings, from_base: bool, run_dir: Path, usable: int,
                   names: list[str]) -> RunSpec:
        data = folders[0]
        every = _every(settings.steps)
        args = ["--data", str(data), "--out", str(run_dir), *self.run_args(settings), "--disc-lr", str(settings.lr),
                # Pixel losses alone for the first quarter: a discriminator has nothing to teach before the
                # colours are right (TRAINING.md).
                "--adv-start", str(settings.steps // 4),
                "--val-images", str(min(8, usable // 10)), "--val-every", str(every), "--sample-every", str(every),
                "--log-every", str(_log_every(settings.steps))]
        if from_base:
            base = self.base_models()[0]
            params = base.arch_params
            args += ["--init", str(base.weights), "--channels", str(params["channels"]),
                     "--levels", str(params["levels"]), "--dilations", *(str(d) for d in params["dilations"])]
        else:
            args += ["--channels", str(settings.channels), "--levels", str(settings.blocks)]
        return RunSpec(str(run_dir), str(data), args, settings.steps, self.kind)

    def default_outputs(self, spec: RunSpec) -> list[Output]:
        folder = Path(spec.data).name
        return [Output(f"{slug(folder, 'my-photos')}-inpaint", f"{folder} fill")]


class CycleGANRecipe(Recipe):
    kind = "cyclegan"
    train_task = "cyclegan"
    model_task = "translate"
    title = "Translate between two of my folders"
    explain = ("Learns to turn pictures like those in one folder into pictures like those in the other, and back "
               "(CycleGAN: the folders need not show the same scenes).")
    where = "the Translate tool"
    folders = 2
    data_hint = "Two folders of at least {min_images} photos each, one per kind of picture, and a short name for " \
                "each kind. Nothing in them is changed."
    channels_label = "Generator width"
    blocks_range = (0, 16)
    channels_range = (4, 128)
    sample_hint = "Samples (photo | translated | translated back) appear here"
    sample_caption = "held-out photos: photo | translated | translated back"
    base_label = "Start from the shipped cat ↔ dog model"
    has_best = False
    crop_sizes = (64, 96, 128, 192, 256)
    crop_hint = "Your photos are resized so their short side is 1.12× the crop, then cut into random square " \
                "crops. Larger crops keep more detail but make each step slower."
    augments = {"hflip": Recipe.augments["hflip"], "dihedral": Recipe.augments["dihedral"],
                "none": Recipe.augments["none"]}
    default_crop = 128
    gpu_crop = 256
    data_flags = ("--domain-a", "--domain-b")
    probe_flags = ("--sample-images", "0", "--sample-every", "0")
    base_names = ("cat2dog", "dog2cat")

    def crop_text(self, crop: int) -> str:
        return f"{crop} px (photos resized to {self.load_size(crop)} px)"

    def preset(self, preset: str, machine: Machine, from_base: bool) -> Settings:
        level = PRESETS.index(preset)
        if machine.cuda:
            steps, (blocks, ngf) = (2_000, 10_000, 40_000)[level], (9, 64)
        else:
            # TRAINING.md's light CycleGAN: about 1.5 s a step at 128 px on a 2-core CPU
            steps = (300, 1_500, 5_000)[level]
            blocks, ngf = ((6, 32), (6, 32), (9, 48))[level]
        return Settings(steps, 1, self.crop_for(machine), 1e-4 if from_base else 2e-4, blocks, ngf,
                        checkpoint_every(steps), self.precision(machine), self.default_augment)

    @staticmethod
    def load_size(crop: int) -> int:
        """The short side photos are resized to before random crops: the paper's 286/256 ratio."""
        return round(crop * 286 / 256)

    def min_side(self, crop: int) -> int:
        # the loop upscales photos to the load size, but not thumbnails far below it
        return self.load_size(crop) // 2

    def base_models(self) -> list[ModelDescriptor]:
        found = {m.name: m for m in get_registry().for_task("translate")
                 if m.source == "pretrained" and m.arch == "cyclegan-resnet"}
        return [found[name] for name in self.base_names] if all(name in found for name in self.base_names) else []

    def no_base_text(self) -> str:
        return ("No cat ↔ dog model is shipped yet (pretrained/cat2dog.safetensors is missing), so this trains "
                "from scratch.")

    def base_size(self) -> tuple[int, int] | None:
        bases = self.base_models()
        return (bases[0].arch_params["n_blocks"], bases[0].arch_params["ngf"]) if bases else None

    def run_name(self, folders: list[Path], names: list[str]) -> str:
        return f"{names[0]}2{names[1]}"

    def build_spec(self, folders: list[Path], settings: Settings, from_base: bool, run_dir: Path, usable: int,
                   names: list[str]) -> RunSpec:
        every = _every(settings.steps)
        args = ["--domain-a", str(folders[0]), "--domain-b", str(folders[1]), "--name-a", names[0],
                "--name-b", names[1], "--out", str(run_dir), *self.run_args(settings),
                "--load-size", str(self.load_size(settings.crop)),
                # ``usable`` is the smaller folder's count: hold out up to 4 of each for the sample grids
                "--sample-images", str(min(4, usable // 10)), "--sample-every", str(every),
                "--log-every", str(_log_every(settings.steps))]
        if from_base:
            a2b, b2a = self.base_models()
            args += ["--init-ab", str(a2b.weights), "--init-ba", str(b2a.weights),
                     "--ngf", str(a2b.arch_params["ngf"]), "--blocks", str(a2b.arch_params["n_blocks"]),
                     "--downsamplings", str(a2b.arch_params.get("n_down", 2))]
        else:
            args += ["--ngf", str(settings.channels), "--blocks", str(settings.blocks)]
        return RunSpec(str(run_dir), str(folders[0]), args, settings.steps, self.kind, str(folders[1]), list(names))

    def default_outputs(self, spec: RunSpec) -> list[Output]:
        a, b = spec.names
        title_a, title_b = (name.replace("_", " ").replace("-", " ").capitalize() for name in (a, b))
        return [Output(f"{a}2{b}", f"{title_a} → {title_b}"), Output(f"{b}2{a}", f"{title_b} → {title_a}")]

    def export_args(self, spec: RunSpec, outputs: list[Output], model_dir: Path, machine: str,
                    latest: bool) -> list[str]:
        init = [spec.args[spec.args.index(flag) + 1] for flag in ("--init-ab", "--init-ba") if flag in spec.args]
        return ["cyclegan-export", "--run", spec.run_dir, "--output-dir", str(model_dir), "--machine", machine,
                "--licence", data_licence([spec.data, spec.data_b], init),
                "--names", *(o.name for o in outputs), "--titles", *(o.title for o in outputs)]


class DCGANRecipe(Recipe):
    kind = "dcgan"
    train_task = "dcgan"
    model_task = "generate"
    title = "Generate new images like my folder"
    explain = ("Trains a small generator (DCGAN, 64 px) that makes new pictures resembling yours; they open as new "
               "images in the editor.")
    where = "File ▸ Generate Images…"
    crop_label = "Picture size"
    crop_noun = "picture"
    crop_step = 32
    crop_sizes = (32, 64, 128)
    crop_hint = "The size of the pictures the generator makes. Yours are resized to it (short side) and cut " \
                "square; 128 px takes about four times as long as 64 px to learn."
    # DiffAugment (Zhao et al. 2020) changes real and generated pictures alike before the discriminator sees them;
    # the pictures themselves are also mirrored left-right at random, whatever is chosen here
    augments = {
        "color,translation": ("Colour and shift (DiffAugment)",
                              "Real and generated pictures are shifted and their colour changed at random before "
                              "the judging network sees them, so it cannot memorise a small folder. Pictures are "
                              "also mirrored left-right."),
        "color,translation,cutout": ("Colour, shift and cut-out (DiffAugment)",
                                     "As colour and shift, and a square of each picture is blanked too: the "
                                     "strongest, for folders of a few hundred pictures or fewer."),
        "none": ("None (left-right flips only)",
                 "Pictures are only mirrored left-right: for large folders (thousands of pictures)."),
    }
    probe_flags = ("--sample-every", "0")
    blocks_label = None
    channels_label = "Width"
    channels_range = (4, 128)
    sample_hint = "Generated pictures appear here"
    sample_caption = "new pictures, from the same random seeds each time"
    has_best = False
    default_crop = 64
    gpu_crop = 64

    def preset(self, preset: str, machine: Machine, from_base: bool) -> Settings:
        level = PRESETS.index(preset)
        if machine.cuda:
            steps, batch, width = (5_000, 20_000, 60_000)[level], 64, 64
        else:
            steps, batch, width = (500, 3_000, 10_000)[level], (16, 32, 32)[level], (32, 48, 64)[level]
        return Settings(steps, batch, self.crop_for(machine), 2e-4, 0, width, checkpoint_every(steps),
                        self.precision(machine), self.default_augment)

    def settings_problem(self, settings: Settings) -> str:
        if settings.crop not in self.crop_sizes:
            return f"The picture size must be {', '.join(map(str, self.crop_sizes[:-1]))} or " \
                   f"{self.crop_sizes[-1]} px."
        return super().settings_problem(settings)

    def run_name(self, folders: list[Path], names: list[str]) -> str:
        return f"{slug(folders[0].name, 'photos')}-generator"

    def build_spec(self, folders: list[Path], settings: Settings, from_base: bool, run_dir: Path, usable: int,
                   names: list[str]) -> RunSpec:
        data = folders[0]
        args = ["--data", str(data), "--out", str(run_dir), "--size", str(settings.crop),
                *self.augment_args(settings),
                "--ngf", str(settings.channels), "--ndf", str(settings.channels), "--steps", str(settings.steps),
                "--batch", str(settings.batch), "--lr", str(settings.lr), "--disc-lr", str(settings.lr),
                "--checkpoint-every", str(settings.checkpoint_every), *_threads(),
                "--precision", settings.precision, "--sample-every", str(_every(settings.steps)),
                "--log-every", str(_log_every(settings.steps))]
        return RunSpec(str(run_dir), str(data), args, settings.steps, self.kind)

    def default_outputs(self, spec: RunSpec) -> list[Output]:
        folder = Path(spec.data).name
        return [Output(f"{slug(folder, 'my-photos')}-generator", f"New {folder}")]

    def export_args(self, spec: RunSpec, outputs: list[Output], model_dir: Path, machine: str,
                    latest: bool) -> list[str]:
        output = outputs[0]
        return ["dcgan-export", "--run", spec.run_dir, "--output", str(model_dir / f"{output.name}.safetensors"),
                "--name", output.name, "--title", output.title, "--machine", machine]


class PairsRecipe(Recipe):
    kind = "pix2pix"
    train_task = "pix2pix"
    model_task = "translate"
    title = "Learn from before/after pairs"
    explain = ("Learns the change between two folders of the same pictures, before and after (sketches and their "
               "paintings, scans and their retouched versions): pix2pix. Files pair by name.")
    where = "the Translate tool"
    folders = 2
    names_needed = False
    paired = True
    min_images = MIN_PAIRS
    headings = ("Before", "After")
    placeholders = ("Folder of the before pictures", "Folder of the after pictures, named as their before pictures")
    data_hint = ("Two folders of the same pictures, before and after the change, at least {min_images} pairs. A "
                 "before file and its after file have the same name (the extension may differ). Nothing in them "
                 "is changed.")
    blocks_label = "Downsampling stages"
    blocks_range = (2, 5)
    channels_label = "Width"
    channels_range = (8, 64)
    sample_hint = "Samples (before | result | after) appear here"
    sample_caption = "held-out pairs: before | result | after"
    crop_sizes = (64, 96, 128, 192, 256)
    crop_step = 32
    crop_hint = "The same square piece is cut from both pictures of a pair, at full size. Larger crops show more " \
                "of the picture at once but make each step slower."
    default_crop = 128
    gpu_crop = 256
    augments = CycleGANRecipe.augments  # left-right flips first: before/after pictures mostly have an up
    data_flags = ("--before", "--after")
    probe_flags = ("--val-images", "0", "--sample-every", "0", "--adv-start", "0")

    def preset(self, preset: str, machine: Machine, from_base: bool) -> Settings:
        level = PRESETS.index(preset)
        if machine.cuda:
            steps, batch = (2_000, 10_000, 40_000)[level], (8, 16, 16)[level]
        else:
            steps, batch = (300, 1_500, 5_000)[level], 4
        channels = (16, 24, 32)[level]
        return Settings(steps, batch, self.crop_for(machine), 2e-4, 4, channels, checkpoint_every(steps),
                        self.precision(machine), self.default_augment)

    def settings_problem(self, settings: Settings) -> str:
        if settings.crop % 2**settings.blocks:
            return f"The crop must be a multiple of {2 ** settings.blocks} (2 to the power of the stages)."
        return super().settings_problem(settings)

    def run_name(self, folders: list[Path], names: list[str]) -> str:
        return f"{slug(folders[0].name, 'before')}2{slug(folders[1].name, 'after')}"

    def build_spec(self, folders: list[Path], settings: Settings, from_base: bool, run_dir: Path, usable: int,
                   names: list[str]) -> RunSpec:
        every = _every(settings.steps)
        args = ["--before", str(folders[0]), "--after", str(folders[1]), "--out", str(run_dir),
                *self.run_args(settings), "--disc-lr", str(settings.lr),
                "--channels", str(settings.channels), "--disc-channels", str(settings.channels),
                "--levels", str(settings.blocks),
                # L1 alone for the first tenth: the discriminator has nothing to judge before the change is roughly
                # right
                "--adv-start", str(settings.steps // 10),
                "--val-images", str(min(4, usable // 10)), "--val-every", str(every), "--sample-every", str(every),
                "--log-every", str(_log_every(settings.steps))]
        return RunSpec(str(run_dir), str(folders[0]), args, settings.steps, self.kind, str(folders[1]))

    def default_outputs(self, spec: RunSpec) -> list[Output]:
        before, after = Path(spec.data).name, Path(spec.data_b).name
        return [Output(f"{slug(before, 'before')}2{slug(after, 'after')}", f"{before} → {after} (my pairs)")]


RECIPES: dict[str, Recipe] = {recipe.kind: recipe for recipe in (SuperResRecipe(), InpaintRecipe(),
                                                                 CycleGANRecipe(), DCGANRecipe(), PairsRecipe())}
