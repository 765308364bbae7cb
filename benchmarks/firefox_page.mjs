// One Firefox page driven over stdin/stdout by benchmarks/firefox_page.py (the browser suite's
// Firefox participant and the benchmarks' Firefox mentor both use it).
//
// Playwright's Firefox is a patched build it downloads; the project runs Debian's firefox-esr
// only, which Playwright cannot drive. puppeteer-core speaks WebDriver BiDi to it and never
// downloads a browser (executablePath is always given). Each instance is its own Firefox
// process with its own profile, with fake camera and microphone and no permission prompt.
//
// Protocol: one JSON object per line each way. Requests {id, cmd, ...}; replies {id, ok, value}
// or {id, ok: false, error}. The first line written is {ready: true, version}.
//   goto {url}             navigate and wait for the load event
//   evaluate {fn, arg?}    `(fn)(arg)` in the page (fn: a function's source); the awaited result
//   errors                 console errors and uncaught page errors seen so far
//   close                  close the browser and exit
//
// Usage: node firefox_page.mjs <firefox executable> [width] [height]

import { createRequire } from "node:module";
import { createInterface } from "node:readline";

// puppeteer-core is installed in web/ (web/package.json, `make install-test`); an ES module
// resolves bare imports only from its own directory upwards, so load it from there.
const puppeteer = createRequire(new URL("../web/package.json", import.meta.url))("puppeteer-core");

const [executablePath, width = "960", height = "720"] = process.argv.slice(2);
if (!executablePath) {
  process.stderr.write("usage: firefox_page.mjs <firefox executable> [width] [height]\n");
  process.exit(2);
}

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const browser = await puppeteer.launch({
  browser: "firefox",
  protocol: "webDriverBiDi",
  executablePath,
  headless: true,
  // the browser's own output (MOZ_LOG) into our stderr, the log the Python side keeps
  dumpio: Boolean(process.env.PEERLEARN_FIREFOX_DUMPIO),
  defaultViewport: { width: Number(width), height: Number(height) },
  extraPrefsFirefox: {
    // a synthetic camera and microphone, granted without a prompt (as Chromium's fake devices)
    "media.navigator.streams.fake": true,
    "media.navigator.permission.disabled": true,
    // autoplay of the remote tiles without a user gesture
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
  },
});
const page = await browser.newPage();
const errors = [];
page.on("console", (m) => {
  if (m.type() === "error") errors.push(m.text());
});
page.on("pageerror", (e) => errors.push(String(e)));

async function handle(req) {
  switch (req.cmd) {
    case "goto":
      await page.goto(req.url, { waitUntil: "load", timeout: 30_000 });
      return null;
    case "evaluate": {
      // the function's source applied to its JSON argument: the same call shape as Playwright's
      const call = req.arg === undefined ? `(${req.fn})()` : `(${req.fn})(${JSON.stringify(req.arg)})`;
      const value = await page.evaluate(call);
      return value === undefined ? null : value;
    }
    case "errors":
      return errors;
    case "close":
      await browser.close();
      out({ id: req.id, ok: true, value: null });
      process.exit(0);
    default:
      throw new Error(`unknown command ${req.cmd}`);
  }
}

out({ ready: true, version: await browser.version() });

// one request at a time, in order: the Python side waits for each reply
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    out({ id: null, ok: false, error: `bad request: ${e}` });
    continue;
  }
  try {
    out({ id: req.id, ok: true, value: await handle(req) });
  } catch (e) {
    out({ id: req.id, ok: false, error: String(e && e.stack ? e.stack : e) });
  }
}
// stdin closed: the test is gone, take the browser with us
await browser.close();
