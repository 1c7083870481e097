"""``emovox live``: the microphone (or a file played in real time), one emotion per utterance."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from emovox.apps.cli.options import (
    DECLIP_OPTION,
    DENOISE_OPTION,
    VAD_OPTION,
    load_recognizer,
)


@click.command()
@click.option(
    "--model",
    "model_dir",
    type=click.Path(),
    help="Model folder, or a shipped model's name: default (the default), ravdess-8.",
)
@click.option("--input", "input_file", type=click.Path(), help="Play this file instead of the mic.")
@click.option("--speed", default=1.0, show_default=True, help="Pace of --input (0: no waiting).")
@click.option("--window", type=float, help="Rolling predictions of this many seconds of speech.")
@click.option("--hop", type=float, help="Seconds between rolling predictions (default window/2).")
@click.option("--save", "save_dir", type=click.Path(), help="Keep each utterance as a WAV here.")
@click.option("--device", help="Input device (number or name; default: the system's).")
@click.option("--labels", help="Restrict to these classes, e.g. angry,happy,neutral,sad.")
@click.option("--json", "json_out", type=click.Path(), help="Write the results and latency here.")
@click.option(
    "--one-speaker",
    is_flag=True,
    help="The session is one speaker: each utterance is adapted to the session so far "
    "(guarded; speaker-adapted).",
)
@VAD_OPTION
@DECLIP_OPTION
@DENOISE_OPTION
def live(
    model_dir,
    input_file,
    speed,
    window,
    hop,
    save_dir,
    device,
    labels,
    json_out,
    one_speaker,
    vad,
    declip,
    denoise,
) -> None:
    """Listen to the microphone and print the emotion of every utterance as it ends."""
    from emovox.apps.live import (
        LATENCY_TARGET_MS,
        LiveDisplay,
        LiveSession,
        MicrophoneSource,
        NoInputDevice,
        check_input_device,
        file_blocks,
        run_live,
    )
    from emovox.audio import AudioError

    rec = load_recognizer(model_dir, labels, declip=declip, denoise=denoise)
    try:
        session = LiveSession(
            rec, window=window, hop=hop, save_dir=save_dir, vad=vad, one_speaker=one_speaker
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if input_file is None:
        try:
            name = check_input_device(int(device) if device and device.isdigit() else device)
        except NoInputDevice as exc:
            click.echo(f"emovox live: {exc}", err=True)
            sys.exit(2)
        click.echo(f"listening on {name} (Ctrl-C to stop)", err=True)
    display = LiveDisplay(rec.labels)
    try:
        with display:
            if input_file is not None:
                blocks = file_blocks(input_file, rec.sample_rate, speed=speed)
                out = run_live(session, blocks, display)
            else:
                dev = int(device) if device and device.isdigit() else device
                with MicrophoneSource(rec.sample_rate, device=dev) as mic:
                    out = run_live(session, mic, display)
    except AudioError as exc:
        raise click.ClickException(str(exc)) from exc
    except NoInputDevice as exc:
        click.echo(f"emovox live: {exc}", err=True)
        sys.exit(2)
    lat = out["latency"]
    if lat["count"]:
        verdict = "within" if lat["meets_target"] else "OVER"
        click.echo(
            f"{lat['count']} utterance(s); latency from the end of an utterance to its prediction: "
            f"median {lat['median_ms']:.0f} ms, max {lat['max_ms']:.0f} ms "
            f"({verdict} the {LATENCY_TARGET_MS:.0f} ms target)"
        )
    else:
        click.echo("no speech heard")
    if json_out:
        Path(json_out).write_text(json.dumps(out, indent=2) + "\n")


COMMAND = live
