"""The embedding network of :class:`~hybridclf.features.CNNFeatures`.

:func:`embedding_network` wraps a classification network built by
:mod:`hybridclf.features._backbones` into a module from images to one vector
per image: the backbone's input normalisation, its trunk up to ``layer``
(several feature maps from one pass: :func:`_LiteTrunk` for EfficientNet-Lite,
torchvision's feature extractor otherwise), the pooling of each map (average,
max or GeM) and the mirrored-image test-time augmentation. torch is imported
only inside functions, so ``import hybridclf`` stays light.
"""

from numbers import Integral

from ._backbones import _LITE, _import_torch

__all__ = ["embedding_network"]


def embedding_network(model, spec, name, *, layer=None, pooling="avg",
                      flip_tta=False):
    """Wrap a classification network into images -> pooled embedding.

    The returned module takes float32 images of shape (n, 3, height, width)
    with values in [0, 255], normalises them as the backbone expects, runs
    the backbone up to ``layer``, pools the feature map to one vector per
    image and, with ``flip_tta``, averages it with the vector of the mirrored
    image.
    """
    torch = _import_torch()
    nn = torch.nn

    layer = spec.default_layer if layer is None else layer
    layers = list(layer) if isinstance(layer, (list, tuple)) else [layer]
    if not layers:
        raise ValueError("The 'layer' parameter of CNNFeatures must not be an empty "
                         "sequence; give None for the backbone's last feature map.")
    if name in _LITE:
        trunk = _LiteTrunk(model, layers)
    else:
        from torchvision.models.feature_extraction import (
            create_feature_extractor,
            get_graph_node_names,
        )

        _, nodes = get_graph_node_names(model)
        return_nodes = {}
        for index, item in enumerate(layers):
            node = item or spec.default_layer
            if node not in nodes and not any(n.startswith(f"{node}.") for n in nodes):
                raise ValueError(
                    f"The 'layer' parameter of CNNFeatures must name nodes of "
                    f"{name!r}, such as {nodes[-6:-1]}. Got {node!r} instead."
                )
            return_nodes[node] = f"out{index}"
        trunk = create_feature_extractor(model, return_nodes=return_nodes)

    class EmbeddingNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk = trunk
            mean = torch.tensor(spec.mean).view(1, 3, 1, 1) * 255.0
            std = torch.tensor(spec.std).view(1, 3, 1, 1) * 255.0
            self.register_buffer("mean", mean)
            self.register_buffer("std", std)

        def pool(self, fmap):
            if pooling == "max":
                return fmap.amax(dim=(2, 3))
            if pooling == "gem":
                return fmap.clamp(min=1e-6).pow(3).mean(dim=(2, 3)).pow(1.0 / 3)
            return fmap.mean(dim=(2, 3))

        def embed(self, x):
            fmaps = self.trunk((x - self.mean) / self.std)
            if isinstance(fmaps, dict):
                fmaps = [fmaps[f"out{i}"] for i in range(len(fmaps))]
            pooled = [self.pool(fmap) for fmap in fmaps]
            return pooled[0] if len(pooled) == 1 else torch.cat(pooled, dim=1)

        def forward(self, x):
            out = self.embed(x)
            if flip_tta:
                out = (out + self.embed(torch.flip(x, dims=[3]))) / 2
            return out

    return EmbeddingNet().eval()


def _lite_trunk_class():
    torch = _import_torch()

    class LiteTrunk(torch.nn.Module):
        """EfficientNet-Lite, returning the feature maps of ``layers``.

        Each entry is an MBConv block index (negative counts from the end) or
        "head" (or None) for the head; the maps come back in the order given, from one
        pass that stops at the deepest one.
        """

        def __init__(self, model, layers):
            super().__init__()
            self.model = model
            n_blocks = len(model._blocks)
            stops = []
            for layer in layers:
                head = layer is None or (isinstance(layer, str) and layer == "head")
                if not head and not (
                    isinstance(layer, Integral) and -n_blocks <= layer < n_blocks
                ):
                    raise ValueError(
                        "The 'layer' parameter of CNNFeatures must be \"head\", a "
                        f"block index in [{-n_blocks}, {n_blocks - 1}] for "
                        "EfficientNet-Lite, or a sequence of these. Got "
                        f"{layer!r} instead."
                    )
                stops.append(n_blocks if head else int(layer) % n_blocks)
            self.stops = stops
            self.last = max(stops)

        def forward(self, x):
            m = self.model
            x = m._swish(m._bn0(m._conv_stem(x)))
            found = {}
            for index, block in enumerate(m._blocks):
                x = block(x)
                if index in self.stops:
                    found[index] = x
                if index == self.last:
                    break
            if self.last == len(m._blocks):
                found[self.last] = m._swish(m._bn1(m._conv_head(x)))
            return [found[stop] for stop in self.stops]

    return LiteTrunk


def _LiteTrunk(model, layers):  # noqa: N802 - builds a class that needs torch
    return _lite_trunk_class()(model, layers)
