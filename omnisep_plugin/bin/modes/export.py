"""``omnisep export``: the mask network as TorchScript or ONNX, checked against eager."""
from pathlib import Path

import click

from .cli_base import CONTEXT, cli, user_errors

#: Largest difference to eager accepted on the example (samples in [-1, 1]).
PARITY_TOLERANCE = 1e-4


@cli.command(context_settings=CONTEXT)
@click.option("--model", "model_path", required=True,
              help="OmniSep package (omnisep.pth from training), or a shipped network: 'omni', "
                   "'instruments' (the default routes between them: export each).")
@click.option("--format", "fmt", required=True, type=click.Choice(["torchscript", "onnx"]))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="The file to write (.pt for torchscript, .onnx for onnx).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@user_errors
def export(model_path, fmt, out_path, force):
    """Export the mask network (U-Net + query head) of an OmniSep model.

    The graph maps (features [batch, 1, F, T], query [batch, n, dim]) to mask logits
    [batch, n, F, T]; the STFT, warp and inverse STFT stay outside it (see
    omnisep_plugin.separation.backends). The export is checked against eager PyTorch on
    the shipped example mixture; `omnisep separate --backend onnxruntime` runs it.
    """
    import torch

    from ...audio_io import read_audio
    from ...models.routed import load_single
    from ...pipelines import DEFAULT
    from ...separation.backends import BackendSeparator, export as export_graph

    out = Path(out_path)
    if out.exists() and not force:
        raise ValueError(f"{out} exists; pass --force to overwrite")
    if Path(model_path).is_file() and Path(model_path).resolve() == out.resolve():
        raise ValueError(f"Refusing to write {out}: it is the model")
    model = load_single(model_path, "omnisep export")
    export_graph(model, out, fmt)
    wav, _ = read_audio(DEFAULT.example)
    wav = torch.from_numpy(wav[:1])
    query = torch.randn(1, 1, model.query_dim, generator=torch.Generator().manual_seed(0))
    backend = "onnxruntime" if fmt == "onnx" else "torchscript"
    with torch.inference_mode():
        diff = (BackendSeparator(model, backend, out)(wav, query) - model(wav, query)).abs().max()
    if not diff <= PARITY_TOLERANCE:
        out.unlink()
        raise RuntimeError(f"The {fmt} export differs from eager by {diff:.2e} on the example")
    click.echo(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MB); max abs difference to "
               f"eager on the example: {diff:.1e}")
