"""One device command: several cat <-> dog CycleGAN configs trained side by side on one lent GPU within a fixed
wall-clock budget, each exported into ``$OUT``.

A lent machine gives a session 15 minutes of device time, its start included, and 10 minutes per command, so
there is one try: this script is that try, prepared and rehearsed on a CPU. A light CycleGAN cannot fill an H200
(its step is a few hundred small kernels), so the configs run as parallel processes. Each config first runs for
``--probe`` seconds with a step count it will never reach (learning rate constant), stops with SIGTERM (which
writes a checkpoint) and reports its speed; it is then resumed with ``--steps`` sized so that its learning rate
decays to 0 just before the budget ends (the schedule is a function of step and ``--steps``, so a resume may set
it). What comes back: ``$OUT/<config>/cat2dog.safetensors`` and ``dog2cat.safetensors`` for each config (light
generators, 8 MB each) and ``$OUT/extras.tar.gz`` (model cards, JSON-lines logs and the last sample grid of each):
seven files for three configs, inside the tool's eight.

On the device, from the repository root, with ``.gpu-data`` (``pack_data.py``) carried:

    python3 training/translate/gpu_session.py --budget 520 --out $OUT

Rehearsal here: ``--budget 180 --probe 45 --device cpu --common "--crop 64 --batch 1 --threads 1 --log-every 5
--sample-every 20" --runs /tmp/cgr --out /tmp/cgout``.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

LICENCE = ("Trained on Kaggle Dogs-vs-Cats (Asirra, Microsoft Research) and Kaggle cat- and dog-breed photos "
           "(Stanford Dogs / ImageNet): non-commercial research terms apply to these weights.")

# PatchGAN on pixels in every config: the projected discriminator shares its AlexNet with the benchmark's judge,
# and on CPU its runs raised the judge's figure with artefacts rather than dogs (training/translate/README.md).
CONFIGS = {
    "p2": "--ngf 32 --blocks 6 --downsamplings 2 --discriminator patch",
    "p3": "--ngf 32 --blocks 6 --downsamplings 3 --discriminator patch",
    "p2-init": "--ngf 32 --blocks 6 --downsamplings 2 --discriminator patch "
               "--init-ab pretrained/cat2dog.safetensors --init-ba pretrained/dog2cat.safetensors",
}
COMMON = ("--name-a cat --name-b dog --batch 4 --crop 128 --load-size 143 --log-every 50 --sample-every 1000 "
          "--checkpoint-every 1000000 --keep-checkpoints 1 --threads 4")
#: Seconds kept at the end for the exports and the archive.
EXPORT_RESERVE_S = 30
#: A share of the measured speed: the resumed run must end before the budget does.
SPEED_MARGIN = 0.9


def _launch(name: str, args: list[str], runs: Path, extra_env: dict[str, str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "ganstudio", "train", "cyclegan", *args]
    print(f"[{name}] {shlex.join(command)}", flush=True)
    with open(runs / f"{name}.jsonl", "a") as log:  # the child keeps its own handle
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **extra_env})


def _events(log: Path) -> list[dict]:
    events = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return events


def _stop(processes: dict[str, subprocess.Popen], grace_s: float = 60) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    end = time.monotonic() + grace_s
    for process in processes.values():
        try:
            process.wait(timeout=max(1.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


def _wait(processes: dict[str, subprocess.Popen], until: float) -> None:
    while time.monotonic() < until and any(p.poll() is None for p in processes.values()):
        time.sleep(1)


def plan_steps(step: int, it_per_s: float, seconds_left: float) -> int:
    """The ``--steps`` for a resumed run at ``step`` that should end after ``seconds_left`` at ``it_per_s``."""
    return step + max(1, int(it_per_s * SPEED_MARGIN * max(0.0, seconds_left)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=520, help="seconds for the whole script")
    parser.add_argument("--probe", type=float, default=60, help="seconds of the first, measuring segment")
    parser.add_argument("--data", default=".gpu-data")
    parser.add_argument("--out", default=os.environ.get("OUT", ""))
    parser.add_argument("--runs", default="/tmp/cyclegan-runs")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--common", default="", help="flags added to every config, after the defaults")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--machine", default="one NVIDIA H200 (lent), batch 4, configs trained side by side")
    args = parser.parse_args(argv)
    if not args.out:
        parser.error("--out (or $OUT) is required")
    deadline = time.monotonic() + args.budget
    runs, out = Path(args.runs), Path(args.out)
    runs.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    env = {"PYTHONUNBUFFERED": "1"}

    def config_args(name: str) -> list[str]:
        return [*shlex.split(CONFIGS[name]), *shlex.split(COMMON), *shlex.split(args.common),
                "--domain-a", f"{args.data}/cats", "--domain-b", f"{args.data}/dogs", "--out", str(runs / name),
                "--device", args.device]

    # Segment 1: measure each config's speed with the others running, at a constant learning rate.
    started, launched = time.monotonic(), time.time()
    processes = {name: _launch(name, [*config_args(name), "--steps", "100000000"], runs, env)
                 for name in args.configs}
    _wait(processes, started + args.probe)
    _stop(processes)
    startup_s = {}
    plans = {}
    for name in args.configs:
        events = _events(runs / f"{name}.jsonl")
        steps = [e for e in events if e.get("event") == "step"]
        if not steps:
            print(f"[{name}] no steps in the probe: see {name}.jsonl", flush=True)
            continue
        # The resume pays the same start-up again (imports, CUDA, loading photos, cuDNN's first choices): the
        # launch-to-first-step time that the first step event's speed does not account for, measured, not guessed.
        startup_s[name] = max(0.0, steps[0]["time"] - launched - steps[0]["step"] / steps[0]["it_per_s"])
        plans[name] = (steps[-1]["step"], steps[-1]["it_per_s"])
        print(f"[{name}] probe: step {steps[-1]['step']}, {steps[-1]['it_per_s']:.1f} it/s, "
              f"start-up {startup_s[name]:.0f} s", flush=True)

    # Segment 2: resume each with a schedule that ends inside the budget.
    seconds_left = deadline - time.monotonic() - EXPORT_RESERVE_S
    processes = {}
    for name, (step, it_per_s) in plans.items():
        total = plan_steps(step, it_per_s, seconds_left - 1.5 * startup_s[name])
        print(f"[{name}] resuming to --steps {total}", flush=True)
        processes[name] = _launch(name, [*config_args(name), "--steps", str(total), "--resume"], runs, env)
    _wait(processes, deadline - EXPORT_RESERVE_S)
    _stop(processes, grace_s=20)

    extras = []
    for name in plans:
        export_dir = runs / f"{name}-export"
        result = subprocess.run([sys.executable, "-m", "ganstudio", "train", "cyclegan-export", "--run",
                                 str(runs / name), "--output-dir", str(export_dir), "--machine", args.machine,
                                 "--licence", LICENCE], capture_output=True, text=True)
        if result.returncode:
            print(f"[{name}] export failed: {result.stderr[-2000:]}", flush=True)
            continue
        (out / name).mkdir(exist_ok=True)
        for weights in sorted(export_dir.glob("*.safetensors")):
            os.replace(weights, out / name / weights.name)
        extras += [(card, f"{name}/{card.name}") for card in sorted(export_dir.glob("*.json"))]
        samples = sorted((runs / name / "samples").glob("step_*.png"))
        if samples:
            extras.append((samples[-1], f"{name}/{samples[-1].name}"))
        extras.append((runs / f"{name}.jsonl", f"{name}/log.jsonl"))
        card = json.loads(next(export_dir.glob("*.json")).read_text())
        print(f"[{name}] exported at step {card['training']['steps']}", flush=True)
    with tarfile.open(out / "extras.tar.gz", "w:gz") as archive:
        for path, arcname in extras:
            archive.add(path, arcname=arcname)
    return 0 if plans else 1


if __name__ == "__main__":
    sys.exit(main())
