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
        ``n_blocks`` must not exceed the network's number of blocks.

    seed : int
        Seeds everything random here; the global torch RNG is left as it was.

    verbose : bool, default=False
        Show a progress bar over the training batches of every epoch (on
        standard error, with the last losses) and log the losses of every
        epoch at INFO level.

    Returns
    -------
    state : dict of str to ndarray
        The trained weights and buffers of the network (head excluded).

    history : list of dict
        ``{"epoch", "train_loss", "val_loss"}`` per epoch.

    Raises
    ------
    ValueError
        When ``n_blocks`` is larger than the network's number of blocks,
        before anything is trained.
    """
    import torch

    stages = _stages(net)
    if n_blocks > len(stages):
        # stages[-n_blocks:] took them all: a typo (20 for 2) silently
        # trained the whole backbone, slower and prone to overfitting
        raise ValueError(
            f"CNNFeatures has fine_tune_blocks={n_blocks}, but this backbone "
            f"has {len(stages)} blocks. Set fine_tune_blocks to a number from "
            f"1 to {len(stages)} ({len(stages)} trains the whole backbone)."
        )
    classes, codes = np.unique(y, return_inverse=True)
    train_idx, val_idx = _split(codes, len(classes), validation_fraction, seed)
    with torch.random.fork_rng(devices=[] if device == "cpu" else None):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        net = net.to(device)
        modules = _unfreeze(net, stages[-n_blocks:])
        run = _Run(net, modules, images, codes, len(classes), device, batch_size)
        params = [p for p in net.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            [{"params": params}, {"params": run.head.parameters()}],
            lr=learning_rate, weight_decay=1e-4,
        )
        history, best_state = _train_epochs(
            run, optimizer, generator, epochs, train_idx, val_idx, verbose
        )
    net.cpu().eval()
    for param in net.parameters():
        param.requires_grad_(False)
    if best_state is not None:
        net.load_state_dict({k: torch.from_numpy(v) for k, v in best_state.items()})
    return _snapshot(net), history


def _split(codes, n_classes, validation_fraction, seed):
    """Train and validation indices; no validation when too few images.

    The split is stratified when every class has two images or more.
    """
    from sklearn.model_selection import train_test_split

    stratify = codes if np.bincount(codes).min() >= 2 else None
    n_val = max(n_classes, int(round(validation_fraction * len(codes))))
    if len(codes) - n_val < n_classes:
        return np.arange(len(codes)), np.arange(0)
    return train_test_split(
        np.arange(len(codes)), test_size=n_val, stratify=stratify,
        random_state=seed % (2**31 - 1),
    )


def _unfreeze(net, stages):
    """Freeze ``net`` except ``stages``; return the modules of those stages."""
    for param in net.parameters():
        param.requires_grad_(False)
    modules = []
    for stage in stages:
        for module in stage if isinstance(stage, list) else [stage]:
            modules.append(module)
            for param in module.parameters():
                param.requires_grad_(True)
    return modules


def _snapshot(net):
    """The weights and buffers of ``net`` as NumPy copies."""
    return {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}


class _Run:
    """The network, its new linear head and the data of one fine-tuning run."""

    def __init__(self, net, modules, images, codes, n_classes, device, batch_size):
        import torch

        with torch.no_grad():
            dim = net(torch.zeros(1, *images.shape[1:], device=device)).shape[1]
        self.net, self.modules = net, modules
        self.head = torch.nn.Linear(dim, n_classes).to(device)
        self.loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
        self.x = torch.from_numpy(images)
        self.y = torch.from_numpy(codes.astype(np.int64))
        self.device, self.batch_size = device, batch_size

    def set_mode(self, training):
        self.net.eval()  # frozen blocks keep their batch-norm statistics
        for module in self.modules:
            module.train(training)
        self.head.train(training)

    def train_epoch(self, train_idx, optimizer, generator, tick=None):
        """One pass over the training images in a random order; the mean loss.

        ``tick()`` (a progress bar's ``update``) is called after each batch.
        """
        import torch

        self.set_mode(True)
        order = torch.randperm(len(train_idx), generator=generator).numpy()
        total = 0.0
        for start in range(0, len(order), self.batch_size):
            idx = torch.from_numpy(train_idx[order[start : start + self.batch_size]])
            if len(idx) < 2:
                continue  # batch norm needs two images
            batch = random_flip_crop(self.x[idx], generator, torch).to(self.device)
            loss = self.loss_fn(self.head(self.net(batch)), self.y[idx].to(self.device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
            if tick is not None:
                tick()
        return total / len(train_idx)

    def val_loss(self, val_idx):
        """The mean loss on the validation images; NaN when there are none."""
        import torch

        if len(val_idx) == 0:
            return float("nan")
        self.set_mode(False)
        total = 0.0
        with torch.no_grad():
            for start in range(0, len(val_idx), self.batch_size):
                idx = torch.from_numpy(val_idx[start : start + self.batch_size])
                logits = self.head(self.net(self.x[idx].to(self.device)))
                labels = self.y[idx].to(self.device)
                total += float(self.loss_fn(logits, labels)) * len(idx)
        return total / len(val_idx)


def _train_epochs(run, optimizer, generator, epochs, train_idx, val_idx, verbose):
    """Train until ``epochs`` or 3 epochs without improvement.

    Returns the history and the weights of the best epoch (None when no epoch
    improved on the start).
    """
    history, best, best_state, patience = [], np.inf, None, 0
    bar = None
    if verbose:  # a fine-tuning of minutes said nothing until its end
        from tqdm.auto import tqdm

        # batches of one image are skipped (batch normalisation needs two)
        per_epoch = len(train_idx) // run.batch_size + (
            len(train_idx) % run.batch_size >= 2)
        bar = tqdm(total=epochs * per_epoch, desc="fine-tuning", unit="batch")
    try:
        for epoch in range(epochs):
            train_loss = run.train_epoch(train_idx, optimizer, generator,
                                         None if bar is None else bar.update)
            val_loss = run.val_loss(val_idx)
            record = {"epoch": epoch + 1, "train_loss": train_loss,
                      "val_loss": val_loss}
            history.append(record)
            (logger.info if verbose else logger.debug)("fine-tuning %s", record)
            if bar is not None:
                bar.set_postfix(epoch=epoch + 1, train_loss=f"{train_loss:.3f}",
                                val_loss=f"{val_loss:.3f}")
            score = val_loss if len(val_idx) else record["train_loss"]
            if score < best - 1e-4:
                best, patience = score, 0
                best_state = _snapshot(run.net)
            else:
                patience += 1
                if patience >= 3:
                    break
    finally:
        if bar is not None:
            bar.close()
    return history, best_state
