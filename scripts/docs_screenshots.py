"""Screenshots of the built documentation site in Debian's headless Chromium.

Usage: ``docs_screenshots.py SITE_DIR OUT_DIR``, after ``mkdocs build --site-dir SITE_DIR``.
Serves SITE_DIR on a free loopback port, opens the home, configuration and runbook pages,
checks that each shows its heading and that the configuration page lists a setting of every
settings class, and writes ``OUT_DIR/{home,configuration,runbook}.png`` (1280 px wide, full
page). Exits 1 naming the page that did not show what it should.
"""

from __future__ import annotations

import functools
import http.server
import sys
import threading
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
# page file name -> (path in the site, heading it must show, further text it must show)
PAGES = {
    "home": ("", "cxone-dnc-sync", "Start here"),
    "configuration": ("configuration/", "Configuration", "DNC_SANDBOX_"),
    "runbook": ("runbook/", "Runbook", "Receiver answers 401"),
}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main(site: Path, out: Path) -> int:
    """Take the screenshots; 0 when every page showed what it should, 1 otherwise."""
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    out.mkdir(parents=True, exist_ok=True)
    url = base
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(30_000)
            for name, (path, heading, text) in PAGES.items():
                url = base + path
                page.goto(url)
                expect(page.locator("article h1")).to_have_text(f"{heading}¶")
                expect(page.get_by_text(text).first).to_be_visible()
                page.screenshot(path=out / f"{name}.png", full_page=True)
                print(f"{out / name}.png: {heading!r} shown")
            browser.close()
    except AssertionError as error:
        first_lines = "\n".join(str(error).splitlines()[:4])
        print(f"docs screenshots: {url}: {first_lines}", file=sys.stderr)
        return 1
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
