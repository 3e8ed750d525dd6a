"""Fine-tune the last blocks of a CNN embedding network on labelled images."""

import logging

import numpy as np

from ..augment._tensor import random_flip_crop

__all__ = ["fine_tune"]

logger = logging.getLogger(__name__)


def _stages(net):
    """The backbone's blocks in order, from first to last."""
    trunk = net.trunk
    model = getattr(trunk, "model", None)
    if model is not None and hasattr(model, "_blocks"):  # EfficientNet-Lite
        return [*model._blocks, [model._conv_head, model._bn1]]
    mods = list(trunk.children())
    while len(mods) == 1 and list(mods[0].children()):
        mods = list(mods[0].children())
    return mods


def fine_tune(net, images, y, *, device, epochs, n_blocks, learning_rate,
              validation_fraction, batch_size, seed, verbose=False):
    """Train the last ``n_blocks`` stages of ``net`` and a linear head.

    Parameters
    ----------
    net : torch.nn.Module
        The embedding network (images in [0, 255] -> vectors), changed in place.

    images : ndarray of shape (n, 3, size, size), dtype float32
        Prepared images.

    y : ndarray of shape (n,)
        Labels.

    device : str
        "cpu" or "cuda".

    epochs, n_blocks, learning_rate, validation_fraction, batch_size : number
        As the parameters of :class:`~hybridclf.features.CNNFeatures`.

    seed : int
        Seeds everything random here; the global torch RNG is left as it was.

    verbose : bool, default=False
        Log the losses of every epoch at INFO level.

    Returns
    -------
    state : dict of str to ndarray
        The trained weights and buffers of the network (head excluded).

    history : list of dict
        ``{"epoch", "train_loss", "val_loss"}`` per epoch.
    """
    import torch
    from sklearn.model_selection import train_test_split

    classes, codes = np.unique(y, return_inverse=True)
    counts = np.bincount(codes)
    stratify = codes if counts.min() >= 2 else None
    n_val = max(len(classes), int(round(validation_fraction * len(codes))))
    if len(codes) - n_val < len(classes):
        train_idx, val_idx = np.arange(len(codes)), np.arange(0)
    else:
        train_idx, val_idx = train_test_split(
            np.arange(len(codes)), test_size=n_val, stratify=stratify,
            random_state=seed % (2**31 - 1),
        )

    stages = _stages(net)
    trainable = stages[-n_blocks:]
    with torch.random.fork_rng(devices=[] if device == "cpu" else None):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        net = net.to(device)
        for param in net.parameters():
            param.requires_grad_(False)
        modules = []
        for stage in trainable:
            for module in stage if isinstance(stage, list) else [stage]:
                modules.append(module)
                for param in module.parameters():
                    param.requires_grad_(True)
        with torch.no_grad():
            dim = net(torch.zeros(1, *images.shape[1:], device=device)).shape[1]
        head = torch.nn.Linear(dim, len(classes)).to(device)
        params = [p for p in net.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            [{"params": params}, {"params": head.parameters()}],
            lr=learning_rate, weight_decay=1e-4,
        )
        loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
        x_all = torch.from_numpy(images)
        y_all = torch.from_numpy(codes.astype(np.int64))

        def set_mode(training):
            net.eval()  # frozen blocks keep their batch-norm statistics
            for module in modules:
                module.train(training)
            head.train(training)

        def evaluate():
            if len(val_idx) == 0:
                return float("nan")
            set_mode(False)
            total = 0.0
            with torch.no_grad():
                for start in range(0, len(val_idx), batch_size):
                    idx = torch.from_numpy(val_idx[start : start + batch_size])
                    logits = head(net(x_all[idx].to(device)))
                    total += float(loss_fn(logits, y_all[idx].to(device))) * len(idx)
            return total / len(val_idx)

        history, best, best_state, patience = [], np.inf, None, 0
        for epoch in range(epochs):
            set_mode(True)
            order = torch.randperm(len(train_idx), generator=generator).numpy()
            total = 0.0
            for start in range(0, len(order), batch_size):
                idx = torch.from_numpy(train_idx[order[start : start + batch_size]])
                if len(idx) < 2:
                    continue  # batch norm needs two images
                batch = random_flip_crop(x_all[idx], generator, torch).to(device)
                loss = loss_fn(head(net(batch)), y_all[idx].to(device))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(idx)
            val_loss = evaluate()
            record = {"epoch": epoch + 1, "train_loss": total / len(train_idx),
                      "val_loss": val_loss}
            history.append(record)
            (logger.info if verbose else logger.debug)("fine-tuning %s", record)
            score = val_loss if len(val_idx) else record["train_loss"]
            if score < best - 1e-4:
                best, patience = score, 0
                best_state = {k: v.detach().cpu().numpy().copy()
                              for k, v in net.state_dict().items()}
            else:
                patience += 1
                if patience >= 3:
                    break
    net.cpu().eval()
    for param in net.parameters():
        param.requires_grad_(False)
    if best_state is not None:
        net.load_state_dict({k: torch.from_numpy(v) for k, v in best_state.items()})
    state = {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}
    return state, history
