"""Augmentation of a batch of image tensors, for fine-tuning a CNN.

The transforms of this package work on one uint8 image at a time with
OpenCV; fine-tuning needs something cheaper on batches that are already
float tensors (on the CPU or a GPU), drawn anew every epoch. So the
fine-tuning loop of :class:`~hybridclf.features.CNNFeatures` uses only the
two augmentations that matter most there, here, on the tensors themselves.
"""

__all__ = ["random_flip_crop"]


def random_flip_crop(batch, generator, torch):
    """Random horizontal flips and crops of 80-100 % of the side, resized back.

    Parameters
    ----------
    batch : torch.Tensor of shape (n, channels, size, size)
        Float images, as the network takes them.

    generator : torch.Generator
        Source of every random draw.

    torch : module
        The ``torch`` module, passed in so that this package never imports it.

    Returns
    -------
    augmented : torch.Tensor of the same shape
        Each image flipped with probability 0.5, then a random square crop of
        it resized back to ``size`` (bilinear).
    """
    n, _, size, _ = batch.shape
    flip = torch.rand(n, generator=generator) < 0.5
    batch = torch.where(flip.view(n, 1, 1, 1), batch.flip(3), batch)
    out = torch.empty_like(batch)
    sides = (size * (0.8 + 0.2 * torch.rand(n, generator=generator))).long()
    for i in range(n):
        side = int(sides[i])
        top = int(torch.randint(0, size - side + 1, (1,), generator=generator))
        left = int(torch.randint(0, size - side + 1, (1,), generator=generator))
        crop = batch[i : i + 1, :, top : top + side, left : left + side]
        out[i] = torch.nn.functional.interpolate(
            crop, size=(size, size), mode="bilinear", align_corners=False)[0]
    return out
