"""The `image-embed` command: one tool for the product's command-line jobs (Typer).

The offline and batch tools (import-models ... convert-classifiers) keep their own argument
parsers (cli/<tool>.py, argparse): the command hands them every argument after its name, so
`image-embed index-folder --help` is that tool's help, with its examples. search-text,
search-image and stats ask a running server (cli/queries.py).

Exit status, every command: 0 done; 1 a failure the tool or the server reported (failed items,
an error answer, a server that cannot be reached); 2 a usage error (a bad option or argument:
Click's and argparse's own status; also a tool's refusal to start, as its help says);
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from collections.abc import Callable
from typing import Annotated, Optional

import typer

from cli import queries

EXIT_CODES = """\b
Exit status: 0 done; 1 a failure the tool or the server reported; 2 a usage error
(Click's own); 130 interrupted."""

app = typer.Typer(
    name="image-embed",
    help="Image embedding, analysis and search: the command-line tools of the image-embed server.",
    epilog=(
        "\b\nExamples:\n"
        "  image-embed import-models --profile tiny\n"
        "  image-embed index-folder ~/Pictures --url http://127.0.0.1:3000 --index photos\n"
        "  image-embed search-text 'sunset over mountains' --top-k 20 --index photos\n"
        "  image-embed stats --index photos\n"
        "  image-embed COMMAND --help\n\n" + EXIT_CODES
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# The tools with their own parsers: command name -> (module, one-line summary).
TOOLS = {
    "import-models": ("cli.import_models", "Put a profile's model weights into the BentoML model store."),
    "index-folder": ("cli.index_folder", "Index every image under a folder into a running server's search index."),
    "import-library": ("cli.import_library", "Import an embeddings.npy + paths.txt library, alignment checked first."),
    "verify-index": ("cli.verify_index", "Check that an index's keys and vectors are aligned."),
    "migrate-index": ("cli.migrate_index", "Copy an index between SQLite data directories and PostgreSQL."),
    "caption-folder": ("cli.caption_folder", "Caption every image of a folder through a running server."),
    "train-classifiers": ("cli.train_classifiers", "Train one binary classifier per collection for `classify`."),
    "convert-classifiers": ("cli.convert_classifiers", "Convert old scikit-learn classifiers into the safe format."),
}


def _add_tool(name: str, module: str, summary: str) -> None:
    @app.command(
        name,
        help=f"{summary}\n\nIts options and examples: image-embed {name} --help",
        short_help=summary,
        add_help_option=False,  # --help goes to the tool's own parser
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def run_tool(ctx: typer.Context) -> None:
        raise typer.Exit(importlib.import_module(module).main(list(ctx.args)) or 0)


for _name, (_module, _summary) in TOOLS.items():
    _add_tool(_name, _module, _summary)

Url = Annotated[str, typer.Option(help="the running server")]
Index = Annotated[str, typer.Option(help="index name")]
TopK = Annotated[int, typer.Option("--top-k", min=1, max=10_000, help="results to show")]
ApiKey = Annotated[Optional[str], typer.Option(help="sent as X-API-Key (servers with IMAGE_EMBED_API_KEYS)")]
AsJson = Annotated[bool, typer.Option("--json", help="print the server's JSON answer instead of a table")]


def examples(*lines: str) -> str:
    """A command's epilog: its examples, kept as written, and the exit statuses."""
    return "\b\nExamples:\n" + "".join(f"  image-embed {line}\n" for line in lines) + "\n" + EXIT_CODES


def answer(ask: Callable[[], dict], show: Callable[[dict, bool], None], as_json: bool) -> None:
    """Ask the server, print its answer; its error, or no answer, is one line and exit status 1."""
    try:
        show(ask(), as_json)
    except queries.ServerError as exc:
        raise typer.Exit(queries.report(exc)) from None


@app.command("search-text", epilog=examples("search-text 'sunset over mountains' --top-k 20",
                                            "search-text 'a cat on a sofa' --index photos --json"))
def search_text(
    query: Annotated[str, typer.Argument(help="what the images should show")],
    top_k: TopK = 20, index: Index = "default", url: Url = queries.DEFAULT_URL, api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Images of an index that match a text, best first: rank, score (cosine), key."""
    answer(lambda: queries.search_text(url, query, top_k, index, api_key), queries.print_hits, as_json)


@app.command("search-image", epilog=examples("search-image query.jpg --top-k 20",
                                             "search-image query.jpg --index photos --url http://127.0.0.1:3000"))
def search_image(
    image: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="the query image")],
    top_k: TopK = 20, index: Index = "default", url: Url = queries.DEFAULT_URL, api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Images of an index similar to one image, best first: rank, score (cosine), key."""
    answer(lambda: queries.search_image(url, image, top_k, index, api_key), queries.print_hits, as_json)


@app.command("stats", epilog=examples("stats", "stats --index photos --json"))
def stats(index: Index = "default", url: Url = queries.DEFAULT_URL, api_key: ApiKey = None, as_json: AsJson = False) -> None:
    """An index's count, dimension, model, metric, index type, bytes on disk and back end."""
    answer(lambda: queries.index_stats(url, index, api_key), queries.print_stats, as_json)


def main() -> None:
    app(prog_name="image-embed")
