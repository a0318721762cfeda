#!/usr/bin/env python3
"""Open WebUI in a real browser against `sputnik serve` (issue 17; `make test-ui`, not part of `make test`).

Starts Sputnik (JSON access log, an API key) and Open WebUI (the `open-webui` PyPI package, offline, a fresh
DATA_DIR, its OpenAI connection set to Sputnik by environment), creates the admin account through Open WebUI's
signup API, then drives headless Chromium with Selenium (the system `chromium` and `chromedriver`): signs in through
the form, picks the model in the model selector, types a message and sends it, watches the reply stream into the page,
and saves a screenshot. Checks:
  - the reply text grows in the page while it streams (several partial texts seen) and then stops;
  - Sputnik's access log has the chat completion (POST /v1/chat/completions, 200) with completion tokens, and it
    carried Open WebUI's key (Sputnik refuses requests without it);
  - the reply Open WebUI stored for the chat is what Sputnik generated (its token count, by Sputnik's /tokenize,
    matches the completion tokens Sputnik logged) and the page shows it.
Every wait is bounded. Loopback only.

  python scripts/test_ui.py --sputnik .build/release/sputnik --model models/SmolLM2-135M-Instruct.Q4_1.gguf \
      --webui .venv-ui/bin/open-webui --screenshot docs/open-webui.png
"""
import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from serverproc import free_port

EMAIL, PASSWORD, NAME = "admin@example.com", "sputnik-ui-test-1", "Sputnik Tester"
PROMPT = "Write three sentences about the Moon."


def http(method, url, body=None, token=None, timeout=30):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, json.loads(r.read() or b"null")


def wait_http(url, proc, what, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                if r.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"{what} did not answer {url} within {timeout:.0f} s")


def until(pred, timeout, what, step=0.25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            v = pred()
        except WebDriverException:
            v = None
        if v:
            return v
        time.sleep(step)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def access_log(path):
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    v = json.loads(line)
                except ValueError:
                    continue
                if v.get("msg") == "request":
                    out.append(v)
    return out


def visible(driver, css):
    return [e for e in driver.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]


def click_text(driver, texts, tags="button"):
    """Clicks the first displayed element (of the given tags) whose text is one of `texts`; True if one was."""
    for e in driver.find_elements(By.CSS_SELECTOR, tags):
        try:
            if e.is_displayed() and e.text.strip() in texts:
                e.click()
                return True
        except WebDriverException:
            continue
    return False


def reply_text(driver):
    """The last assistant message's text in the page ('' before one exists)."""
    for css in ("#response-content-container", ".chat-assistant"):
        els = driver.find_elements(By.CSS_SELECTOR, css)
        if els:
            return els[-1].text.strip()
    return ""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sputnik", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--webui", required=True, help="the open-webui executable (its venv's bin/open-webui)")
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--chromedriver", default=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--timeout", type=float, default=240, help="bound of each wait in the browser, seconds")
    ap.add_argument("--start-timeout", type=float, default=900,
                    help="bound of each server's start, seconds (Open WebUI imports for minutes on a busy machine)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, DATA_DIR, step screenshots)")
    a = ap.parse_args()
    a.sputnik, a.model, a.webui = (os.path.abspath(x) for x in (a.sputnik, a.model, a.webui))
    t0 = time.time()
    work = tempfile.mkdtemp(prefix="sputnik-ui-")
    procs, driver = [], None
    alias = os.path.basename(a.model).removesuffix(".gguf")
    key = "sk-ui-" + secrets.token_hex(8)
    sp_port, ui_port = free_port(), free_port()
    sp_log, ui_log = os.path.join(work, "sputnik.log"), os.path.join(work, "open-webui.log")
    ok = False
    try:
        sp = subprocess.Popen([a.sputnik, "serve", "--model", a.model, "--alias", alias, "--host", "127.0.0.1",
                               "--port", str(sp_port), "--threads", str(a.threads), "--api-key", key,
                               "--log-format", "json"], stdout=open(sp_log, "w"), stderr=subprocess.STDOUT)
        procs.append(sp)
        # Open WebUI: offline, a fresh DATA_DIR (its settings are read from the environment only on a first start),
        # the OpenAI connection = Sputnik, no Ollama, no local embedding model, no background task calls to the model
        # (titles, tags, follow-ups, autocomplete), so the one chat completion Sputnik logs is the conversation's.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OLLAMA_"))}
        env.update({
            "DATA_DIR": os.path.join(work, "data"), "OFFLINE_MODE": "true", "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1", "RAG_EMBEDDING_ENGINE": "openai", "BYPASS_EMBEDDING_AND_RETRIEVAL": "true",
            "ENABLE_OLLAMA_API": "false", "ENABLE_OPENAI_API": "true",
            "OPENAI_API_BASE_URL": f"http://127.0.0.1:{sp_port}/v1", "OPENAI_API_KEY": key,
            "WEBUI_SECRET_KEY": secrets.token_hex(32), "WEBUI_AUTH": "true", "ENABLE_SIGNUP": "true",
            "ENABLE_TITLE_GENERATION": "false", "ENABLE_TAGS_GENERATION": "false",
            "ENABLE_FOLLOW_UP_GENERATION": "false", "ENABLE_AUTOCOMPLETE_GENERATION": "false",
            "ENABLE_EVALUATION_ARENA_MODELS": "false", "ENABLE_VERSION_UPDATE_CHECK": "false",
            "ANONYMIZED_TELEMETRY": "false", "DO_NOT_TRACK": "true", "SCARF_NO_ANALYTICS": "true",
        })
        os.makedirs(env["DATA_DIR"])
        ui = subprocess.Popen([a.webui, "serve", "--host", "127.0.0.1", "--port", str(ui_port)], env=env, cwd=work,
                              stdout=open(ui_log, "w"), stderr=subprocess.STDOUT)
        procs.append(ui)
        base = f"http://127.0.0.1:{ui_port}"
        wait_http(f"http://127.0.0.1:{sp_port}/health", sp, "sputnik", a.start_timeout)
        print(f"sputnik ready after {time.time() - t0:.1f} s (model {alias})", flush=True)
        wait_http(base + "/health", ui, "open-webui", a.start_timeout)
        _, cfg = http("GET", base + "/api/config")
        print(f"open-webui {cfg.get('version')} ready after {time.time() - t0:.1f} s", flush=True)

        # The first account becomes the admin (through the API; the browser then signs in with the form).
        _, auth = http("POST", base + "/api/v1/auths/signup", {"name": NAME, "email": EMAIL, "password": PASSWORD})
        token = auth["token"]
        _, models = http("GET", base + "/api/models", token=token, timeout=60)
        ids = [m["id"] for m in models.get("data", [])]
        assert alias in ids, f"Open WebUI does not list Sputnik's model {alias!r}: {ids}"
        # Open WebUI 0.12 attaches its builtin tools (memory, notes, chat search: native function calling) to every
        # chat. SmolLM2's chat template has no tool-call format, so Sputnik refuses `tools` for it with a 400 (shown in
        # the page as the reply). Turn the model's "builtin tools" capability off, as an admin does in Admin >
        # Models (a model entry with the base model's id overrides its settings). Its max_tokens bounds the reply
        # (Open WebUI sends none by default, and SmolLM2 can ramble until the context is full).
        http("POST", base + "/api/v1/models/create", {"id": alias, "base_model_id": None, "name": alias,
             "meta": {"capabilities": {"builtin_tools": False}}, "params": {"max_tokens": 96}}, token=token)

        opts = Options()
        opts.binary_location = a.chromium
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900", "--no-first-run", "--disable-extensions"):
            opts.add_argument(arg)
        driver = webdriver.Chrome(service=Service(executable_path=a.chromedriver), options=opts)
        driver.set_page_load_timeout(a.timeout)
        browser = driver.capabilities.get("browserVersion")
        step = lambda name: driver.save_screenshot(os.path.join(work, f"step-{name}.png"))

        # Sign in.
        driver.get(base + "/auth")
        email = until(lambda: visible(driver, "input[type=email], input[name=email]"), a.timeout, "the sign-in form")[0]
        email.send_keys(EMAIL)
        visible(driver, "input[type=password]")[0].send_keys(PASSWORD)
        step("signin")
        visible(driver, "button[type=submit]")[0].click()
        until(lambda: visible(driver, "#chat-input"), a.timeout, "the chat page after signing in")
        print(f"signed in after {time.time() - t0:.1f} s", flush=True)
        time.sleep(1.0)
        # A first sign-in may open the "what's new" dialog: close it.
        if click_text(driver, {"Okay, Let's Go!", "Okay, let's go!", "Close"}):
            time.sleep(0.5)
        step("chat")

        # Pick the model: open the model selector, choose Sputnik's model by its id.
        def open_selector():
            for css in ("#model-selector-model-button", "button[aria-haspopup=listbox][aria-label^='Selected model']",
                        "button[aria-label='Select a model']", "#model-selector-0-button", "[id^=model-selector] button"):
                els = visible(driver, css)
                if els:
                    els[0].click()
                    return True
            return click_text(driver, {"Select a model"}, "button, div[role=button]")
        until(open_selector, a.timeout, "the model selector")
        time.sleep(0.5)
        step("selector")

        def choose():
            for e in driver.find_elements(By.CSS_SELECTOR, "[role=option], [role=menuitem], [data-value], button"):
                try:
                    if e.get_attribute("id") == "model-selector-model-button":
                        continue
                    if e.is_displayed() and (e.text.strip().splitlines()[:1] == [alias]
                                             or e.get_attribute("data-value") == alias):
                        e.click()
                        return True
                except (WebDriverException, IndexError):
                    continue
            return False
        until(choose, a.timeout, f"model {alias} in the selector")
        time.sleep(0.5)
        def picked():
            b = driver.find_elements(By.CSS_SELECTOR, "#model-selector-model-button")
            if b:
                return b[0].get_attribute("aria-label") == f"Selected model: {alias}"
            return alias in driver.find_element(By.TAG_NAME, "body").text
        until(picked, a.timeout, "the model picked")
        step("picked")
        print(f"picked model {alias}", flush=True)

        # Send the message.
        before = len([e for e in access_log(sp_log) if e.get("route") == "/v1/chat/completions"])
        box = visible(driver, "#chat-input")[0]
        box.click()
        box.send_keys(PROMPT)
        time.sleep(0.3)
        step("typed")
        box.send_keys(Keys.ENTER)
        sent = time.time()
        # Watch the reply stream in: record each distinct text, until it has stopped changing for a while and
        # Sputnik has logged the finished request.
        partials, last_change = [], time.time()
        deadline = time.time() + a.timeout
        while time.time() < deadline:
            try:
                t = reply_text(driver)
            except WebDriverException:
                t = ""
            if t and (not partials or t != partials[-1]):
                partials.append(t)
                last_change = time.time()
            done = [e for e in access_log(sp_log) if e.get("route") == "/v1/chat/completions"][before:]
            if partials and done and time.time() - last_change > 3.0:
                break
            time.sleep(0.1)
        else:
            raise TimeoutError(f"the reply did not finish within {a.timeout:.0f} s (texts seen: {len(partials)})")
        final = partials[-1]
        print(f"reply in the page after {time.time() - sent:.1f} s, {len(partials)} distinct texts while streaming: "
              f"{final[:200]!r}", flush=True)
        os.makedirs(os.path.dirname(os.path.abspath(a.screenshot)), exist_ok=True)
        driver.save_screenshot(a.screenshot)

        # The page showed the reply growing: several partial texts, each a prefix-ish of the next, before the last.
        assert len(partials) >= 3, f"the reply did not stream into the page: texts seen {partials!r}"
        assert len(partials[0]) < len(final), partials

        # Sputnik served it: the chat completion in its access log (with Open WebUI's key, or it would be a 401).
        chats = [e for e in access_log(sp_log) if e.get("route") == "/v1/chat/completions"][before:]
        assert [str(e.get("status")) for e in chats] == ["200"], chats
        served = chats[0]
        completion = int(served["completion_tokens"])
        assert completion > 0, served

        # What Open WebUI stored for the chat is what Sputnik generated, and the page shows it.
        _, listing = http("GET", base + "/api/v1/chats/", token=token)
        assert listing, "Open WebUI stored no chat"
        _, chat = http("GET", base + f"/api/v1/chats/{listing[0]['id']}", token=token)
        msgs = chat["chat"]["history"]["messages"]
        stored = [m for m in msgs.values() if m.get("role") == "assistant"][-1]["content"]
        _, tok = http("POST", f"http://127.0.0.1:{sp_port}/tokenize", {"content": stored}, token=key)
        n = len(tok["tokens"])
        # The stored text is the streamed deltas joined; re-tokenizing text need not give back the same tokens (BPE
        # merges across the generated tokens' boundaries, the end-of-turn token Sputnik counts, whitespace Open WebUI
        # trims), so the counts agree within 5 % (at least 2).
        assert abs(n - completion) <= max(2, completion // 20), \
            f"stored reply is {n} tokens, Sputnik generated {completion}: {stored!r}"
        words = re.findall(r"[A-Za-z0-9']+", stored)
        page_words = re.findall(r"[A-Za-z0-9']+", final)
        assert words and words == page_words, f"page {page_words[:20]} vs stored {words[:20]}"
        ok = True
        print(f"PASS in {time.time() - t0:.1f} s: open-webui {cfg.get('version')}, chromium {browser}, "
              f"selenium {__import__('selenium').__version__}; Sputnik logged {len(chats)} chat completion "
              f"(request {served.get('request_id')}, {served.get('prompt_tokens')} prompt + {completion} completion "
              f"tokens, TTFT {served.get('ttft_ms')} ms); stored reply = {n} tokens; screenshot {a.screenshot}",
              flush=True)
    finally:
        if driver is not None:
            if not ok:
                try:
                    driver.save_screenshot(os.path.join(work, "failure.png"))
                except WebDriverException:
                    pass
            driver.quit()
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        if not ok:
            for name in ("sputnik.log", "open-webui.log"):
                path = os.path.join(work, name)
                if os.path.exists(path):
                    print(f"--- {name} (last 40 lines)", file=sys.stderr)
                    print("".join(open(path, errors="replace").readlines()[-40:]), file=sys.stderr)
            print(f"work directory kept: {work}", file=sys.stderr)
        elif not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
