"""``ganstudio train ...``: the command line of the training engine (also what the GUI wizard runs as a child)."""
from __future__ import annotations

import argparse
import importlib
import json
import traceback
from pathlib import Path

from ganstudio.train.events import EventWriter

_DEFAULTS_NOTE = "(on --resume, the model and optimiser settings come from the checkpoint)"


def _add_run_options(parser: argparse.ArgumentParser, defaults: object) -> None:
    """The options every training loop shares: machine, cadence of events and checkpoints, resuming."""
    parser.add_argument("--threads", type=int, default=defaults.threads, help="torch CPU threads")
    parser.add_argument("--device", default=defaults.device, help='"auto" (CUDA when present), "cpu", "cuda", "cuda:1"')
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--sample-every", type=int, default=defaults.sample_every, help="sample grid every N steps")
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    parser.add_argument("--log-every", type=int, default=defaults.log_every, help="a step event every N steps")
    parser.add_argument("--keep-checkpoints", type=int, default=defaults.keep_checkpoints)
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    _add_precision(parser, defaults.precision)
    parser.add_argument("--background", action="store_true",
                        help="run at a lower CPU priority, so an editor on the same machine stays smooth "
                             "(the GUI's wizard passes it)")


def _add_precision(parser: argparse.ArgumentParser, default: str) -> None:
    from ganstudio.train.common import PRECISIONS

    parser.add_argument("--precision", choices=PRECISIONS, default=default,
                        help="autocast on a CUDA GPU: bf16, fp16 (with loss scaling) or auto (bf16 where the GPU "
                             "has it, else fp16); the CPU always trains in fp32, where bf16 is many times slower")


def _add_augment(parser: argparse.ArgumentParser, default: str) -> None:
    from ganstudio.train.data import AUGMENTS

    parser.add_argument("--augment", choices=AUGMENTS, default=default,
                        help="random changes of the training crops: dihedral (flips and 90-degree turns, for pictures "
                             "without an up), hflip (left-right flips only: faces, text, buildings) or none "
                             f"(default: {default})")


def add_train_parser(subparsers: argparse._SubParsersAction) -> None:
    from ganstudio.train.data import DEGRADATIONS
    from ganstudio.train.superres import SR_DISCRIMINATORS, SuperResConfig

    defaults = SuperResConfig(data="", out="")
    train = subparsers.add_parser("train", help="train a model; progress as JSON lines on stdout")
    tasks = train.add_subparsers(dest="train_task", required=True)

    sr = tasks.add_parser("superres", help=f"SRResNet (L1) or its SRGAN fine-tune {_DEFAULTS_NOTE}")
    sr.add_argument("--data", required=True, help="folder of training photos (searched recursively)")
    sr.add_argument("--out", required=True, help="run folder: checkpoints, samples, best weights")
    sr.add_argument("--scale", type=int, choices=(2, 4), default=defaults.scale)
    sr.add_argument("--blocks", type=int, default=defaults.blocks, help="residual blocks")
    sr.add_argument("--channels", type=int, default=defaults.channels)
    sr.add_argument("--bicubic-residual", action=argparse.BooleanOptionalAction, default=defaults.bicubic_residual,
                    help="learn only the difference to a bicubic upscale")
    sr.add_argument("--crop", type=int, default=defaults.crop, help="HR crop size in pixels")
    _add_augment(sr, defaults.augment)
    sr.add_argument("--degradation", choices=DEGRADATIONS, default=defaults.degradation,
                    help="how the LR side is made: bicubic (clean sources) or real (random blur, resize, noise and "
                         "JPEG, twice: photos as people have them)")
    sr.add_argument("--clean-share", type=float, default=defaults.clean_share,
                    help="with --degradation real: the share of training pairs left a plain downscale")
    sr.add_argument("--batch", type=int, default=defaults.batch)
    sr.add_argument("--steps", type=int, default=defaults.steps, help="total steps (the LR schedule spans them)")
    sr.add_argument("--lr", type=float, default=defaults.lr)
    sr.add_argument("--lr-schedule", choices=("cosine", "step"), default=defaults.lr_schedule)
    sr.add_argument("--lr-min", type=float, default=defaults.lr_min)
    sr.add_argument("--lr-step", type=int, default=defaults.lr_step, help="halve the LR every N steps (step schedule)")
    sr.add_argument("--warmup", type=int, default=defaults.warmup)
    sr.add_argument("--val-images", type=int, default=defaults.val_images,
                    help="images held out of --data for validation PSNR")
    sr.add_argument("--val-crop", type=int, default=defaults.val_crop)
    sr.add_argument("--val-every", type=int, default=defaults.val_every)
    sr.add_argument("--init", default="", help="start from these .safetensors weights (same architecture: "
                                               "fine-tuning); ignored on --resume")
    sr.add_argument("--init-partial", action="store_true",
                    help="take only the --init tensors that fit, e.g. a ×4 model's body for a ×2 model")
    gan = sr.add_argument_group("SRGAN phase", "an adversarial fine-tune when --adv-weight > 0 (start it from the "
                                                "pixel-loss model with --init)")
    gan.add_argument("--l1-weight", type=float, default=defaults.l1_weight)
    gan.add_argument("--perceptual-weight", type=float, default=defaults.perceptual_weight,
                     help="weight of the LPIPS (AlexNet) loss")
    gan.add_argument("--adv-weight", type=float, default=defaults.adv_weight, help="weight of the GAN loss")
    gan.add_argument("--perceptual-blur", type=float, default=defaults.perceptual_blur,
                     help="Gaussian sigma (px) applied before the AlexNet-based losses, against mesh artifacts")
    gan.add_argument("--discriminator", choices=SR_DISCRIMINATORS, default=defaults.discriminator,
                     help="srgan: the paper's VGG-style D on pixels; patch: 70x70 PatchGAN on pixels; "
                          "projected: heads on frozen AlexNet features")
    gan.add_argument("--disc-channels", type=int, default=defaults.disc_channels)
    gan.add_argument("--disc-lr", type=float, default=defaults.disc_lr)
    gan.add_argument("--lpips-weights", default=defaults.lpips_weights,
                     help="AlexNet/LPIPS .npz (default ../shared/weights/lpips_alexnet.npz)")
    _add_run_options(sr, defaults)

    _add_inpaint_parser(tasks)

    export = tasks.add_parser("export", help="write a superres, inpaint or pose-refiner run's weights as "
                                             ".safetensors plus a JSON model card")
    export.add_argument("--run", required=True, help="run folder (as given to --out)")
    export.add_argument("--output", required=True, help="<name>.safetensors; the card goes beside it as <name>.json")
    export.add_argument("--name", help="model name (default: the output file's stem)")
    export.add_argument("--title", required=True, help='title shown in the app, e.g. "Faithful ×4"')
    export.add_argument("--machine", required=True, help="what it was trained on, for the card")
    export.add_argument("--latest", action="store_true", help="export the latest weights, not the best-validating")
    export.add_argument("--metrics", help="JSON file of measured metrics to put in the card")
    export.add_argument("--temperature", type=float, help="colorize: the annealed mean's temperature (else the run's)")
    export.add_argument("--vividness", type=float, help="colorize: lean toward rare colours (else the run's)")
    export.add_argument("--summary", help="one line the tool's panel shows under the model list: what the model "
                                          "is for")
    _add_cyclegan_parsers(tasks)
    _add_pose_parsers(tasks)
    _add_pose_refiner_parser(tasks)
    _add_dcgan_parsers(tasks)
    _add_colorize_parser(tasks)
    _add_pix2pix_parser(tasks)
    _add_heads_parser(tasks)


def _add_heads_parser(tasks: argparse._SubParsersAction) -> None:
    from ganstudio.train.heads import HeadsConfig

    defaults = HeadsConfig(domain_a="", domain_b="", out="")
    hd = tasks.add_parser("heads", help=f"the animal-head locator, labelled by AlexNet's activation maps of a "
                                        f"probe between two folders {_DEFAULTS_NOTE}")
    hd.add_argument("--domain-a", required=True, help="folder of one animal's photos, e.g. cats")
    hd.add_argument("--domain-b", required=True, help="folder of the other's, e.g. dogs")
    hd.add_argument("--out", required=True, help="run folder: labels, checkpoints, samples, best weights")
    hd.add_argument("--size", type=int, default=defaults.size, help="square network input, pixels")
    hd.add_argument("--widths", type=int, nargs="+", default=list(defaults.widths),
                    help="channels of the stem and of each stride-2 stage")
    hd.add_argument("--decoder", type=int, default=defaults.decoder, help="channels of the upsampling path")
    hd.add_argument("--sigma", type=float, default=defaults.sigma, help="centre heatmap Gaussian, in cells")
    hd.add_argument("--batch", type=int, default=defaults.batch)
    hd.add_argument("--steps", type=int, default=defaults.steps, help="total steps (the cosine LR spans them)")
    hd.add_argument("--lr", type=float, default=defaults.lr)
    hd.add_argument("--warmup", type=int, default=defaults.warmup)
    hd.add_argument("--mask-weight", type=float, default=defaults.mask_weight)
    hd.add_argument("--val-images", type=int, default=defaults.val_images, help="photos of each folder held out")
    hd.add_argument("--val-every", type=int, default=defaults.val_every)
    hd.add_argument("--cam-threshold", type=float, default=defaults.cam_threshold,
                    help="the head is the activation map above this share of its peak")
    hd.add_argument("--head-scale", type=float, default=defaults.head_scale,
                    help="head side = this x that part's larger extent")
    hd.add_argument("--min-probability", type=float, default=defaults.min_probability,
                    help="photos the probe gives their own class less than this are not labelled")
    hd.add_argument("--others", default=defaults.others,
                    help="folder of photos with neither animal: a third class for the labelling probe")
    hd.add_argument("--negatives", type=float, default=defaults.negatives,
                    help="share of views cut from the --others photos, with no head to find")
    hd.add_argument("--lpips-weights", default=defaults.lpips_weights,
                    help="AlexNet/LPIPS .npz (default ../shared/weights/lpips_alexnet.npz)")
    _add_run_options(hd, defaults)

    crops = tasks.add_parser("head-crops", help="each photo's head as the Translate tool crops it: the training "
                                                "data of a head translator")
    crops.add_argument("--data", required=True, help="folder of photos")
    crops.add_argument("--out", required=True, help="folder the crops go to (photos already there are kept)")
    crops.add_argument("--size", type=int, default=72, help="crop side in pixels")
    crops.add_argument("--context", type=float, default=2.0, help="crop side = this x the head's side")
    crops.add_argument("--locator", default="head-locator", help="the head locator model (name)")


def _add_inpaint_parser(tasks: argparse._SubParsersAction) -> None:
    from ganstudio.train.inpaint import InpaintConfig

    defaults = InpaintConfig(data="", out="")
    ip = tasks.add_parser("inpaint", help=f"gated-conv inpainting GAN (SN-PatchGAN, L1 + LPIPS) {_DEFAULTS_NOTE}")
    ip.add_argument("--data", required=True, help="folder of training photos (searched recursively)")
    ip.add_argument("--out", required=True, help="run folder: checkpoints, samples, best weights")
    ip.add_argument("--channels", type=int, default=defaults.channels, help="full-resolution width of G")
    ip.add_argument("--levels", type=int, default=defaults.levels, help="stride-2 stages of G")
    ip.add_argument("--dilations", type=int, nargs="+", default=list(defaults.dilations),
                    help="one residual block of G per dilation, at the lowest resolution")
    ip.add_argument("--prefill", action=argparse.BooleanOptionalAction, default=defaults.prefill,
                    help="G corrects a push-pull fill of the hole instead of filling it from zeros")
    ip.add_argument("--disc-channels", type=int, default=defaults.disc_channels)
    ip.add_argument("--crop", type=int, default=defaults.crop, help="training crop size in pixels")
    ip.add_argument("--max-zoom", type=float, default=defaults.max_zoom,
                    help="source windows of 1 to this many crop sizes are resized to the crop")
    _add_augment(ip, defaults.augment)
    ip.add_argument("--batch", type=int, default=defaults.batch)
    ip.add_argument("--steps", type=int, default=defaults.steps)
    ip.add_argument("--lr", type=float, default=defaults.lr)
    ip.add_argument("--disc-lr", type=float, default=defaults.disc_lr)
    ip.add_argument("--hole-weight", type=float, default=defaults.hole_weight)
    ip.add_argument("--l1-weight", type=float, default=defaults.l1_weight)
    ip.add_argument("--perceptual-weight", type=float, default=defaults.perceptual_weight)
    ip.add_argument("--adv-weight", type=float, default=defaults.adv_weight)
    ip.add_argument("--adv-start", type=int, default=defaults.adv_start, help="pixel losses only before this step")
    ip.add_argument("--min-area", type=float, default=defaults.min_area)
    ip.add_argument("--max-area", type=float, default=defaults.max_area)
    # the flags of earlier versions: --bf16 is the default, --no-bf16 is --precision fp32
    for flag, precision in (("--bf16", "bf16"), ("--no-bf16", "fp32")):
        ip.add_argument(flag, dest="precision", action="store_const", const=precision, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)
    ip.add_argument("--workers", type=int, default=defaults.workers, help="data loader processes")
    ip.add_argument("--val-images", type=int, default=defaults.val_images,
                    help="images held out of --data for validation")
    ip.add_argument("--val-every", type=int, default=defaults.val_every)
    ip.add_argument("--init", default="", help="start the generator from these .safetensors weights (same "
                                               "architecture: fine-tuning); ignored on --resume")
    _add_run_options(ip, defaults)


#: ``ganstudio train KIND``: the family's module (its ``train``) and config class.
TRAINERS = {"superres": ("superres", "SuperResConfig"), "inpaint": ("inpaint", "InpaintConfig"),
            "cyclegan": ("cyclegan", "CycleGANConfig"), "pose": ("pose", "PoseConfig"),
            "pose-refiner": ("pose_refiner", "RefinerConfig"), "dcgan": ("dcgan", "DCGANConfig"),
            "colorize": ("colorize", "ColorizeConfig"), "pix2pix": ("pix2pix", "Pix2PixConfig"),
            "heads": ("heads", "HeadsConfig")}


def _config(args: argparse.Namespace, config_type: type) -> object:
    return config_type(**{name: getattr(args, name) for name in config_type.__dataclass_fields__})


def run_train(args: argparse.Namespace) -> int:
    events = EventWriter()
    if getattr(args, "background", False):
        from ganstudio.engine.priority import lower_priority

        lower_priority()
    try:
        if args.train_task in TRAINERS:
            module_name, config_name = TRAINERS[args.train_task]
            module = importlib.import_module(f"ganstudio.train.{module_name}")
            options = {"backbone_weights": args.backbone_weights} if args.train_task == "cyclegan" else {}
            return module.train(_config(args, getattr(module, config_name)), resume=args.resume, events=events,
                                **options)
        if args.train_task == "export":
            return _export(args, events)
        if args.train_task == "cyclegan-export":
            return _export_cyclegan(args, events)
        if args.train_task == "pose-export":
            return _export_pose(args, events)
        if args.train_task == "dcgan-export":
            return _export_dcgan(args, events)
        if args.train_task == "head-crops":
            from ganstudio.train.heads import write_head_crops

            write_head_crops(Path(args.data), Path(args.out), args.size, args.context, args.locator, events)
            return 0
        raise ValueError(f"unknown training task {args.train_task!r}")
    except Exception as exc:  # A watcher (the GUI) must always get a parseable final event, whatever failed.
        events.error(f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
        return 1


def parse_train_args(argv: list[str]) -> argparse.Namespace:
    """``ganstudio train`` ARGV parsed as the top-level command line parses it."""
    parser = argparse.ArgumentParser(prog="ganstudio")
    add_train_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["train", *argv])


def _metrics(args: argparse.Namespace) -> dict | None:
    return json.loads(Path(args.metrics).read_text()) if args.metrics else None


def _export(args: argparse.Namespace, events: EventWriter) -> int:
    from ganstudio.train import inpaint, pose_refiner, superres
    from ganstudio.train.common import run_task

    from ganstudio.train import colorize, heads, pix2pix

    families = {module.TASK: module for module in (inpaint, pose_refiner, colorize, pix2pix, heads)}
    family = families.get(run_task(Path(args.run)) or "", superres)
    output = Path(args.output)
    # options only some families' exports take (a family lists its own in EXPORT_OPTIONS)
    options = {k: getattr(args, k) for k in ("temperature", "vividness") if getattr(args, k) is not None}
    unknown = set(options) - set(getattr(family, "EXPORT_OPTIONS", ()))
    if unknown:
        kind = getattr(family, "TASK", "superres")
        raise ValueError(f"{', '.join('--' + k for k in sorted(unknown))}: not an option of a {kind} run's export")
    card = family.export(Path(args.run), output, args.name or output.stem, args.title, args.machine,
                         use_best=not args.latest, metrics=_metrics(args), **options)
    if args.summary:
        values = json.loads(Path(card).read_text(encoding="utf-8"))
        Path(card).write_text(json.dumps({**values, "summary": args.summary}, indent=2, ensure_ascii=False) + "\n",
                              encoding="utf-8")
    events.emit("export", weights=str(output), card=str(card))
    return 0


def _add_cyclegan_parsers(tasks: argparse._SubParsersAction) -> None:
    from ganstudio.train.cyclegan import DISCRIMINATORS, CycleGANConfig

    defaults = CycleGANConfig(domain_a="", domain_b="", out="")
    cg = tasks.add_parser("cyclegan", help=f"CycleGAN between two folders of photos {_DEFAULTS_NOTE}")
    cg.add_argument("--domain-a", required=True, help="folder of domain A photos (searched recursively)")
    cg.add_argument("--domain-b", required=True, help="folder of domain B photos")
    cg.add_argument("--out", required=True, help="run folder: checkpoints, samples")
    cg.add_argument("--name-a", default=defaults.name_a, help="short name of domain A, e.g. cat (models: a2b, b2a)")
    cg.add_argument("--name-b", default=defaults.name_b, help="short name of domain B, e.g. dog")
    cg.add_argument("--ngf", type=int, default=defaults.ngf, help="generator width (the paper: 64)")
    cg.add_argument("--blocks", type=int, default=defaults.blocks, help="generator residual blocks (the paper: 9)")
    cg.add_argument("--downsamplings", type=int, default=defaults.downsamplings,
                    help="generator stride-2 stages (the paper: 2; 3 lets the residual blocks see a whole face)")
    cg.add_argument("--ndf", type=int, default=defaults.ndf, help="discriminator width")
    cg.add_argument("--discriminator", choices=DISCRIMINATORS, default=defaults.discriminator,
                    help="patch: 70x70 PatchGAN (the paper); projected: heads on frozen AlexNet features, "
                         "converges in fewer steps (needs the LPIPS AlexNet weights)")
    cg.add_argument("--backbone-weights", help="AlexNet .npz for --discriminator projected "
                                               "(default: $GANSTUDIO_LPIPS_WEIGHTS or ../shared/weights)")
    cg.add_argument("--load-size", type=int, default=defaults.load_size,
                    help="photos are resized to this short side before random crops")
    cg.add_argument("--crop", type=int, default=defaults.crop)
    _add_augment(cg, defaults.augment)
    cg.add_argument("--small-crop", type=int, default=defaults.small_crop,
                    help="low-resolution start: crops shrunk to this size for the first --small-crop-steps")
    cg.add_argument("--small-crop-steps", type=int, default=defaults.small_crop_steps)
    cg.add_argument("--batch", type=int, default=defaults.batch)
    cg.add_argument("--steps", type=int, default=defaults.steps,
                    help="total steps; the LR decays linearly to 0 over the second half")
    cg.add_argument("--lr", type=float, default=defaults.lr)
    cg.add_argument("--beta1", type=float, default=defaults.beta1, help="Adam beta1 (the paper: 0.5)")
    cg.add_argument("--lambda-cycle", type=float, default=defaults.lambda_cycle)
    cg.add_argument("--lambda-identity", type=float, default=defaults.lambda_identity,
                    help="identity loss weight as a fraction of --lambda-cycle")
    cg.add_argument("--pool-size", type=int, default=defaults.pool_size)
    cg.add_argument("--diffaugment", default=defaults.diffaugment,
                    help="DiffAugment for both discriminators, e.g. color,translation,cutout (default: none)")
    cg.add_argument("--sample-images", type=int, default=defaults.sample_images,
                    help="photos held out of each folder for the sample grids")
    cg.add_argument("--init-ab", default="", help="start the A->B generator from these .safetensors weights (same "
                                                  "--ngf, --blocks, --downsamplings), e.g. cat2dog; ignored on "
                                                  "--resume")
    cg.add_argument("--init-ba", default="", help="start the B->A generator from these weights, e.g. dog2cat")
    _add_run_options(cg, defaults)

    export = tasks.add_parser("cyclegan-export", help="write both generators of a CycleGAN run as <a>2<b> and "
                                                      "<b>2<a> .safetensors plus model cards")
    export.add_argument("--run", required=True, help="run folder (as given to --out)")
    export.add_argument("--output-dir", required=True, help="e.g. pretrained/ or the user's model folder")
    export.add_argument("--machine", required=True, help="what it was trained on, for the cards")
    export.add_argument("--licence", required=True, help="the training data's terms, for the cards")
    export.add_argument("--metrics", help="JSON file of measured metrics, keyed by model name")
    export.add_argument("--names", nargs=2, metavar=("A2B", "B2A"), help="model names (default: <a>2<b> <b>2<a>)")
    export.add_argument("--head-context", type=float,
                        help="the run learnt head crops of this many head sides (ganstudio train head-crops): the "
                             "Translate tool turns a photo's head alone")
    export.add_argument("--titles", nargs=2, metavar=("A2B", "B2A"), help='titles shown in the app '
                                                                          '(default: "A → B" "B → A")')


def _export_cyclegan(args: argparse.Namespace, events: EventWriter) -> int:
    from ganstudio.train import cyclegan

    for card in cyclegan.export(Path(args.run), Path(args.output_dir), args.machine, args.licence, _metrics(args),
                                args.names, args.titles, args.head_context):
        events.emit("export", weights=str(card.with_suffix(".safetensors")), card=str(card))
    return 0


def _add_pose_parsers(tasks: argparse._SubParsersAction) -> None:
    from ganstudio.train.pose import PoseConfig

    defaults = PoseConfig(data="", out="")
    pose = tasks.add_parser("pose", help=f"the pose network: joint heatmaps and person mask {_DEFAULTS_NOTE}")
    pose.add_argument("--data", required=True, help="people folder: photos/, pose_landmarks.json, masks/")
    pose.add_argument("--out", required=True, help="run folder: checkpoints, samples, best weights")
    pose.add_argument("--height", type=int, default=defaults.height, help="network input height")
    pose.add_argument("--width", type=int, default=defaults.width, help="network input width")
    pose.add_argument("--widths", type=int, nargs="+", default=list(defaults.widths),
                      help="channels of the stem and each downsampling stage")
    pose.add_argument("--decoder", type=int, default=defaults.decoder, help="channels of the upsampling path")
    pose.add_argument("--sigma", type=float, default=defaults.sigma, help="heatmap Gaussian, in heatmap cells")
    pose.add_argument("--batch", type=int, default=defaults.batch)
    pose.add_argument("--steps", type=int, default=defaults.steps, help="total steps (the cosine LR spans them)")
    pose.add_argument("--lr", type=float, default=defaults.lr)
    pose.add_argument("--warmup", type=int, default=defaults.warmup)
    pose.add_argument("--mask-weight", type=float, default=defaults.mask_weight)
    pose.add_argument("--val-images", type=int, default=defaults.val_images, help="photos held out for PCK")
    pose.add_argument("--val-every", type=int, default=defaults.val_every)
    pose.add_argument("--repose", type=float, default=defaults.repose,
                      help="share of views whose arm or leg is first swung by the warp (teaches unusual poses)")
    pose.add_argument("--repose-refiner", default=defaults.repose_refiner,
                      help="pose refiner .safetensors (card beside it) that cleans the re-posed views, as the tool "
                           "does by default")
    pose.add_argument("--init", default=defaults.init, help="start from these .safetensors weights; ignored on --resume")
    pose.add_argument("--wild", type=float, default=defaults.wild,
                      help="share of views framed as users' photos are: waist-up, small and far away, cut off by "
                           "the frame")
    pose.add_argument("--backgrounds", default=defaults.backgrounds,
                      help="folder of photos behind the people (beyond the photo's edge; behind masked people)")
    pose.add_argument("--occlude", type=float, default=defaults.occlude,
                      help="share of views with patches pasted over them")
    _add_run_options(pose, defaults)

    export = tasks.add_parser("pose-export", help="write a pose run's weights as .safetensors plus a model card")
    export.add_argument("--run", required=True)
    export.add_argument("--output", required=True, help="<name>.safetensors; the card goes beside it")
    export.add_argument("--title", default="Pose and person mask")
    export.add_argument("--machine", required=True, help="what it was trained on, for the card")
    export.add_argument("--latest", action="store_true", help="export the latest weights, not the best-validating")
    export.add_argument("--metrics", help="JSON file of measured metrics to put in the card")
    export.add_argument("--temperature", type=float, help="colorize: the annealed mean's temperature (else the run's)")
    export.add_argument("--vividness", type=float, help="colorize: lean toward rare colours (else the run's)")


def _add_pose_refiner_parser(tasks: argparse._SubParsersAction) -> None:
    from ganstudio.train.pose_refiner import RefinerConfig

    defaults = RefinerConfig(data="", out="")
    pr = tasks.add_parser("pose-refiner", help="the pose edit's refiner, self-supervised: warp each person to a "
                                               f"nearby pose and back, learn to remove the artifacts {_DEFAULTS_NOTE}")
    pr.add_argument("--data", required=True, help="people folder: photos/, pose_landmarks.json, masks/")
    pr.add_argument("--out", required=True, help="run folder: checkpoints, samples, best weights")
    pr.add_argument("--channels", type=int, default=defaults.channels, help="full-resolution width of the U-Net")
    pr.add_argument("--levels", type=int, default=defaults.levels, help="stride-2 stages of the U-Net")
    pr.add_argument("--bottleneck", type=int, default=defaults.bottleneck,
                    help="residual blocks at the lowest resolution")
    pr.add_argument("--disc-channels", type=int, default=defaults.disc_channels, help="PatchGAN width")
    pr.add_argument("--crop", type=int, default=defaults.crop, help="training crop around the edited region")
    pr.add_argument("--min-scale", type=float, default=defaults.min_scale,
                    help="photos are shrunk by a random factor from this to 1 before the round trip")
    pr.add_argument("--reach", type=float, default=defaults.reach,
                    help="swing angles as a fraction of the detector's re-posing (arms 150, legs 60 degrees)")
    pr.add_argument("--max-lost", type=float, default=defaults.max_lost,
                    help="share of a masked person a round trip may lose (a dropped limb) before it is redrawn")
    pr.add_argument("--batch", type=int, default=defaults.batch)
    pr.add_argument("--steps", type=int, default=defaults.steps)
    pr.add_argument("--lr", type=float, default=defaults.lr)
    pr.add_argument("--disc-lr", type=float, default=defaults.disc_lr)
    pr.add_argument("--l1-weight", type=float, default=defaults.l1_weight)
    pr.add_argument("--perceptual-weight", type=float, default=defaults.perceptual_weight,
                    help="weight of the LPIPS (AlexNet) loss")
    pr.add_argument("--adv-weight", type=float, default=defaults.adv_weight, help="weight of the PatchGAN loss")
    pr.add_argument("--adv-start", type=int, default=defaults.adv_start, help="pixel losses only before this step")
    pr.add_argument("--workers", type=int, default=defaults.workers,
                    help="data loader processes (each view is two warps: use several on a GPU)")
    pr.add_argument("--val-images", type=int, default=defaults.val_images,
                    help="photos held out for validation (200: every 10th, as the detector)")
    pr.add_argument("--val-every", type=int, default=defaults.val_every)
    pr.add_argument("--init", default=defaults.init, help="start from these .safetensors weights; ignored on --resume")
    _add_run_options(pr, defaults)


def _export_pose(args: argparse.Namespace, events: EventWriter) -> int:
    from ganstudio.train import pose

    output = Path(args.output)
    card = pose.export(Path(args.run), output, output.stem, args.title, args.machine, use_best=not args.latest,
                       metrics=_metrics(args))
    events.emit("export", weights=str(card.with_suffix(".safetensors")), card=str(card))
    return 0


def _add_dcgan_parsers(tasks: argparse._SubParsersAction) -> None:
    from ganstudio.train.dcgan import LOSSES, DCGANConfig
    from ganstudio.train.diffaugment import AUGMENTS

    defaults = DCGANConfig(data="", out="")
    dc = tasks.add_parser("dcgan", help=f"an unconditional DCGAN: new pictures like a folder's {_DEFAULTS_NOTE}")
    dc.add_argument("--data", required=True, help="folder of training pictures (searched recursively)")
    dc.add_argument("--out", required=True, help="run folder: checkpoints, samples")
    dc.add_argument("--size", type=int, default=defaults.size, help="picture size in pixels (4 x a power of 2)")
    dc.add_argument("--latent-dim", type=int, default=defaults.latent_dim)
    dc.add_argument("--ngf", type=int, default=defaults.ngf, help="generator width")
    dc.add_argument("--ndf", type=int, default=defaults.ndf, help="discriminator width")
    dc.add_argument("--batch", type=int, default=defaults.batch)
    dc.add_argument("--steps", type=int, default=defaults.steps)
    dc.add_argument("--lr", type=float, default=defaults.lr)
    dc.add_argument("--disc-lr", type=float, default=defaults.disc_lr)
    dc.add_argument("--beta1", type=float, default=defaults.beta1)
    dc.add_argument("--beta2", type=float, default=defaults.beta2)
    dc.add_argument("--loss", choices=LOSSES, default=defaults.loss)
    dc.add_argument("--augment", default=defaults.augment,
                    help=f"DiffAugment policies, comma-separated ({', '.join(AUGMENTS)}); 'none' (or '') for none")
    dc.add_argument("--ema-decay", type=float, default=defaults.ema_decay,
                    help="moving average of the generator that samples and the export use")
    dc.add_argument("--sample-count", type=int, default=defaults.sample_count, help="pictures per sample grid")
    _add_run_options(dc, defaults)

    export = tasks.add_parser("dcgan-export", help="write a DCGAN run's averaged generator as .safetensors plus a "
                                                   "model card (task generate)")
    export.add_argument("--run", required=True, help="run folder (as given to --out)")
    export.add_argument("--output", required=True, help="<name>.safetensors; the card goes beside it as <name>.json")
    export.add_argument("--name", help="model name (default: the output file's stem)")
    export.add_argument("--title", required=True, help="title shown in the app")
    export.add_argument("--machine", required=True, help="what it was trained on, for the card")
    export.add_argument("--metrics", help="JSON file of measured metrics to put in the card")
    export.add_argument("--temperature", type=float, help="colorize: the annealed mean's temperature (else the run's)")
    export.add_argument("--vividness", type=float, help="colorize: lean toward rare colours (else the run's)")


def _add_colorize_parser(tasks: argparse._SubParsersAction) -> None:
    from ganstudio.train.colorize import ColorizeConfig

    defaults = ColorizeConfig(data="", out="")
    cz = tasks.add_parser("colorize", help=f"pix2pix colourisation from a folder of colour photos {_DEFAULTS_NOTE}")
    cz.add_argument("--data", required=True, help="folder of colour photos (searched recursively)")
    cz.add_argument("--out", required=True, help="run folder: checkpoints, samples, best weights")
    cz.add_argument("--channels", type=int, default=defaults.channels, help="U-Net width")
    cz.add_argument("--levels", type=int, default=defaults.levels, help="U-Net downsampling stages")
    cz.add_argument("--bins", type=int, default=defaults.bins,
                    help="a*b* grid cells per axis of the classifying head (0: regress a*b* with L1)")
    cz.add_argument("--rebalance", type=float, default=defaults.rebalance,
                    help="0-1: how far rare colours are weighted up (Zhang et al. 2016's lambda)")
    cz.add_argument("--ce-weight", type=float, default=defaults.ce_weight)
    cz.add_argument("--calibrated", action=argparse.BooleanOptionalAction, default=defaults.calibrated,
                    help="rebalance inside the loss only, so the head learns the photos' own odds of each colour")
    cz.add_argument("--temperature", type=float, default=defaults.temperature,
                    help="annealed mean of the exported model: lower is more vivid, 1 the mean colour")
    cz.add_argument("--vividness", type=float, default=defaults.vividness,
                    help="how far the exported model leans toward rare colours (calibrated runs; 0: not at all)")
    cz.add_argument("--context", action=argparse.BooleanOptionalAction, default=defaults.context,
                    help="global context in the U-Net's bottleneck (the whole picture's mean features)")
    cz.add_argument("--disc-channels", type=int, default=defaults.disc_channels)
    cz.add_argument("--crop", type=int, default=defaults.crop)
    cz.add_argument("--photo-size", type=int, default=defaults.photo_size,
                    help="long side each photo is brought to before cropping, and the model's working size in "
                         "the tool (0: the photos' own scale, working size 512)")
    _add_augment(cz, defaults.augment)
    cz.add_argument("--batch", type=int, default=defaults.batch)
    cz.add_argument("--steps", type=int, default=defaults.steps)
    cz.add_argument("--lr", type=float, default=defaults.lr)
    cz.add_argument("--disc-lr", type=float, default=defaults.disc_lr)
    cz.add_argument("--l1-weight", type=float, default=defaults.l1_weight)
    cz.add_argument("--chroma-weight", type=float, default=defaults.chroma_weight,
                    help="weight of the colour the prediction lacks (0: plain L1, which gives sepia)")
    cz.add_argument("--adv-weight", type=float, default=defaults.adv_weight)
    cz.add_argument("--adv-start", type=int, default=defaults.adv_start, help="pixel losses only before this step")
    cz.add_argument("--val-images", type=int, default=defaults.val_images)
    cz.add_argument("--val-every", type=int, default=defaults.val_every)
    cz.add_argument("--init", default=defaults.init, help="start from these .safetensors weights; ignored on --resume")
    _add_run_options(cz, defaults)


def _add_pix2pix_parser(tasks: argparse._SubParsersAction) -> None:
    from ganstudio.train.pix2pix import Pix2PixConfig

    defaults = Pix2PixConfig(before="", after="", out="")
    pp = tasks.add_parser("pix2pix", help=f"pix2pix on before/after pairs of two folders {_DEFAULTS_NOTE}")
    pp.add_argument("--before", required=True, help="folder of before pictures (searched recursively)")
    pp.add_argument("--after", required=True, help="folder of after pictures, each named as its before picture")
    pp.add_argument("--out", required=True, help="run folder: checkpoints, samples, best weights")
    pp.add_argument("--channels", type=int, default=defaults.channels, help="U-Net width")
    pp.add_argument("--levels", type=int, default=defaults.levels, help="U-Net downsampling stages")
    pp.add_argument("--disc-channels", type=int, default=defaults.disc_channels)
    pp.add_argument("--crop", type=int, default=defaults.crop)
    _add_augment(pp, defaults.augment)
    pp.add_argument("--batch", type=int, default=defaults.batch)
    pp.add_argument("--steps", type=int, default=defaults.steps)
    pp.add_argument("--lr", type=float, default=defaults.lr)
    pp.add_argument("--disc-lr", type=float, default=defaults.disc_lr)
    pp.add_argument("--l1-weight", type=float, default=defaults.l1_weight)
    pp.add_argument("--adv-weight", type=float, default=defaults.adv_weight)
    pp.add_argument("--adv-start", type=int, default=defaults.adv_start, help="L1 only before this step")
    pp.add_argument("--val-images", type=int, default=defaults.val_images, help="pairs held out for validation")
    pp.add_argument("--val-every", type=int, default=defaults.val_every)
    pp.add_argument("--init", default=defaults.init, help="start from these .safetensors weights; ignored on --resume")
    _add_run_options(pp, defaults)


def _export_dcgan(args: argparse.Namespace, events: EventWriter) -> int:
    from ganstudio.train import dcgan

    output = Path(args.output)
    card = dcgan.export(Path(args.run), output, args.name or output.stem, args.title, args.machine, _metrics(args))
    events.emit("export", weights=str(output), card=str(card))
    return 0
