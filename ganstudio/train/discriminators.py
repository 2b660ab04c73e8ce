"""Discriminators for the adversarial training phases; training-only, so they live here and are never shipped."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from ganstudio.models.arch.dcgan import BASE_SIZE, stage_count

if TYPE_CHECKING:
    from ganstudio.train.engine import Run
    from ganstudio.train.lpips import LPIPS


class SRGANDiscriminator(nn.Module):
    """The SRGAN paper's VGG-style discriminator (8 convs, 64 -> 512 channels, four stride-2 stages).

    Changed from the paper: spectral norm instead of batch norm (stable with the small batches a CPU allows),
    and global average pooling before the dense layers so any HR crop size works. Returns one logit per image.
    """

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        widths = [channels, channels, channels * 2, channels * 2, channels * 4, channels * 4, channels * 8, channels * 8]
        for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
            stride = 2 if i % 2 == 0 else 1
            layers += [spectral_norm(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)), nn.LeakyReLU(0.2, inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), spectral_norm(nn.Linear(widths[-1], 1024)),
                                  nn.LeakyReLU(0.2, inplace=True), spectral_norm(nn.Linear(1024, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)


class PatchGANDiscriminator(nn.Module):
    """pix2pix/CycleGAN's 70×70 PatchGAN: a map of logits, each judging one 70×70 patch of the input.

    C64-C128-C256-C512 (4×4 kernels, the first three stride 2, no norm on the first) then a 1-channel conv. Instance
    norm, as in CycleGAN; the batch there is 1, where batch norm would be instance norm anyway.
    """

    def __init__(self, ndf: int = 64, n_layers: int = 3, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1),
                                   nn.LeakyReLU(0.2, inplace=True)]
        width = ndf
        for index in range(1, n_layers + 1):
            previous, width = width, ndf * min(2**index, 8)
            stride = 2 if index < n_layers else 1
            layers += [nn.Conv2d(previous, width, 4, stride=stride, padding=1), nn.InstanceNorm2d(width),
                       nn.LeakyReLU(0.2, inplace=True)]
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] (as the generators give it) -> N × 1 × H' × W' logits."""
        return self.model(x * 2 - 1)


class ProjectedDiscriminator(nn.Module):
    """Small discriminator heads on the features of a frozen pretrained network (Sauer et al. 2021, "Projected
    GANs Converge Faster"), here the first three conv stages of ImageNet AlexNet.

    Judging pretrained features instead of pixels lets the discriminator tell real from fake after far fewer
    steps, which is what a CPU budget needs. The backbone is not part of this module: it is frozen, shared by
    both discriminators of a CycleGAN and loaded from its own weight file, so it stays out of checkpoints and the
    optimiser; :meth:`forward` takes its feature list. Each head: a 1×1 projection, then spectral-normed 3×3
    convs, giving a map of logits per feature scale.
    """

    def __init__(self, feature_channels: tuple[int, ...] = (64, 192, 384), width: int = 64) -> None:
        super().__init__()
        self.heads = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, width, 1),
                nn.LeakyReLU(0.2, inplace=True),
                spectral_norm(nn.Conv2d(width, width, 3, padding=1)),
                nn.LeakyReLU(0.2, inplace=True),
                spectral_norm(nn.Conv2d(width, 1, 3, padding=1)),
            )
            for channels in feature_channels
        )

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """The backbone's feature maps (the first ``len(heads)`` are used) -> one logit map per scale."""
        return [head(feature) for head, feature in zip(self.heads, features)]


class SNPatchGANDiscriminator(nn.Module):
    """DeepFill v2's SN-PatchGAN (Yu et al. 2019): six 5×5 stride-2 spectral-norm convs on RGB + mask.

    Returns a map of logits, one per overlapping patch, for a hinge loss averaged over all of them: free-form
    holes can be anywhere, so every patch is judged rather than the image as a whole. Any crop size works.
    """

    def __init__(self, channels: int = 64, in_channels: int = 4) -> None:
        super().__init__()
        widths = [in_channels, channels, channels * 2, channels * 4, channels * 4, channels * 4, channels * 4]
        layers: list[nn.Module] = []
        for index, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(spectral_norm(nn.Conv2d(c_in, c_out, 5, stride=2, padding=2)))
            if index < len(widths) - 2:
                layers.append(nn.LeakyReLU(0.2, inplace=True))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DCGANDiscriminator(nn.Module):
    """DCGAN's discriminator (4×4 stride-2 convs, ``ndf`` doubling to at most 8 × ``ndf``, down to 4×4, then one
    logit per image) with spectral norm instead of batch norm (Miyato et al. 2018): the Lipschitz bound keeps the
    small-batch, small-data training a user's folder allows from collapsing, and no statistics couple the images of
    a batch. Takes RGB in [-1, 1]."""

    def __init__(self, ndf: int = 64, size: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width_in = 3
        for stage in range(stage_count(size)):
            width = ndf * min(2**stage, 8)
            layers += [spectral_norm(nn.Conv2d(width_in, width, 4, stride=2, padding=1)),
                       nn.LeakyReLU(0.2, inplace=True)]
            width_in = width
        layers.append(spectral_norm(nn.Conv2d(width_in, 1, BASE_SIZE)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1).squeeze(1)


def _weighted_mean(values: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return values.mean()
    weight = weight.expand_as(values)
    return (values * weight).sum() / weight.sum().clamp_min(1e-6)


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """The discriminator's hinge loss on its logits (maps or one per image); ``weight`` (broadcastable to the
    logits) counts some patches more, e.g. only those over an edited region."""
    return _weighted_mean(F.relu(1 - real), weight) + _weighted_mean(F.relu(1 + fake), weight)


def hinge_g_loss(fake: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """The generator's side of the hinge loss: raise the discriminator's logits on its output."""
    return -_weighted_mean(fake, weight)


def hinge_gan_step(run: Any, discriminator: nn.Module, optimiser: torch.optim.Optimizer, real: torch.Tensor,
                   fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One hinge update of ``discriminator`` on ``real`` against ``fake`` (detached), then the generator's hinge
    loss on ``fake`` for it to add to its own: (the discriminator's loss, detached; the generator's adversarial
    loss). ``run`` is the training engine's run (its precision and its update, which DDP and scaling go through);
    a conditional GAN passes the condition inside both (e.g. the before picture beside the after)."""
    with run.precision.autocast():
        d_loss = hinge_d_loss(discriminator(real).float(), discriminator(fake.detach()).float())
    run.update(d_loss, optimiser)
    with run.precision.autocast():
        g_adv = hinge_g_loss(discriminator(fake).float())
    return d_loss.detach(), g_adv


class ImagePool:
    """Shrivastava et al. 2017: half the time, the discriminator sees an older fake instead of the newest one,
    so the generators cannot win by oscillating between modes the discriminator has forgotten.

    Stored as 8-bit on the CPU: a quarter of the size in checkpoints (which must travel back from a lent GPU in
    16 MiB pieces), and a fake rounded to 1/255 is no different to the discriminator.
    """

    def __init__(self, size: int, images: list[torch.Tensor] | None = None) -> None:
        self.size = size
        self.images: list[torch.Tensor] = list(images or [])

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return batch
        out = []
        for image in batch.detach():
            stored = image.clamp(0, 1).mul(255).round().to("cpu", torch.uint8)
            if len(self.images) < self.size:
                self.images.append(stored)
                out.append(image)
            elif torch.rand(()).item() < 0.5:
                index = torch.randint(0, self.size, ()).item()
                out.append(self.images[index].to(image.device, image.dtype) / 255)
                self.images[index] = stored
            else:
                out.append(image)
        return torch.stack(out).contiguous(memory_format=torch.channels_last)


def lsgan_loss(logits: list[torch.Tensor], target: float) -> torch.Tensor:
    """Least-squares GAN loss (Mao et al. 2017), averaged over the discriminator's logit maps."""
    return sum(F.mse_loss(x, torch.full_like(x, target)) for x in logits) / len(logits)


class Adversary:
    """The SRGAN phase's discriminator, its optimiser and the two sides of the (non-saturating) GAN loss.

    ``projected`` judges the frozen AlexNet features of the LPIPS network the perceptual loss already holds, so
    it adds only small trained heads: a fraction of the pixel discriminator's cost on a CPU.
    """

    def __init__(self, cfg: Any, device: torch.device, lpips: LPIPS) -> None:
        self.lpips = lpips
        self.net: nn.Module
        if cfg.discriminator == "projected":
            self.net = ProjectedDiscriminator(width=cfg.disc_channels)
        elif cfg.discriminator == "patch":
            self.net = PatchGANDiscriminator(cfg.disc_channels)
        else:
            self.net = SRGANDiscriminator(cfg.disc_channels)
        self.net.to(device, memory_format=torch.channels_last).train()
        self.projected = cfg.discriminator == "projected"
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.disc_lr, betas=(0.9, 0.99))

    def logits(self, images: torch.Tensor, run: Run) -> list[torch.Tensor]:
        net = run.trained(self.net)
        if self.projected:
            return net(self.lpips.features(images))
        return [net(images)]

    def generator_loss(self, fake: torch.Tensor, run: Run) -> torch.Tensor:
        logits = self.logits(fake, run)
        return sum(F.softplus(-logit).mean() for logit in logits) / len(logits)

    def discriminator_step(self, real: torch.Tensor, fake: torch.Tensor, run: Run) -> float:
        """One update on a real and a (detached) fake batch; returns the loss."""
        real_logits, fake_logits = self.logits(real, run), self.logits(fake.detach(), run)
        loss = sum(F.softplus(-r).mean() + F.softplus(f).mean() for r, f in zip(real_logits, fake_logits))
        loss = loss / len(real_logits)
        run.update(loss, self.optimizer)
        return float(loss.item())
