"""What the page inlines so it needs no network: the Vega libraries and the page's own CSS / JS.

The Vega-Embed, Vega-Lite and Vega bundle comes from the installed ``vl-convert-python`` wheel
(PyPI), which ships them and assembles one self-contained script: nothing is fetched at
install, render or view time.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def vega_bundle() -> str:
    """The vega-embed + vega-lite + vega script; defines ``window.vegaEmbed`` (~0.9 MB)."""
    import vl_convert

    # a literal "</script" inside the bundle would end the page's <script> element
    return vl_convert.javascript_bundle().replace("</script", "<\\/script")


def static_text(name: str) -> str:
    """A file of ``cliprobe/report/static`` (the page's CSS and JS)."""
    return resources.files("cliprobe.report").joinpath("static", name).read_text("utf-8")
