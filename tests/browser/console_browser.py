#!/usr/bin/python3
"""The web console in a real headless Chromium, driven by Selenium (Debian's
python3-selenium and chromium-driver, installed by scripts/setup.sh).

Run by tests/server/console_e2e_test.cc against a real `qmtl serve` holding
world alpha (strategy "up" in DryRun, "steady" Live, one evaluation run):

  console_browser.py --url URL --operator TOKEN --viewer TOKEN --run RUN --shots DIR

Checks every page loads with no console error and draws what it should, that a
promotion made through the API shows on an open world page within 2 s, and that
a viewer sees no write control and a forged write is refused. Screenshots of
each page go to DIR. Exit status 0 when every check holds; each failure is
printed on its own line.
"""
import argparse
import datetime
import json
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what, flush=True)


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--window-size=1280,1800"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def status(d):
    el = d.find_element(By.ID, "status")
    return {k: el.get_attribute("data-" + k) for k in ("page", "ready", "errors", "charts", "series")}


def wait(d, what, test, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if test():
                return True
        except Exception:  # the page is between renders
            pass
        time.sleep(0.05)
    check(False, "timed out waiting for " + what)
    return False


def ready_after(d, before):
    return wait(d, "the page to render", lambda: int(status(d)["ready"] or 0) > before)


def console_errors(d):
    return [e["message"] for e in d.get_log("browser") if e["level"] == "SEVERE"]


def sign_in(d, url, token):
    d.get(url + "/ui/")
    wait(d, "the sign-in form", lambda: status(d)["page"] == "login")
    d.find_element(By.CSS_SELECTOR, "form.login input").send_keys(token)
    d.find_element(By.CSS_SELECTOR, "form.login button").click()
    wait(d, "the worlds page after signing in", lambda: status(d)["page"] == "worlds")
    # Signed out, the console learnt so from a 401 (its designed signal); drop
    # that entry so that only errors after signing in count.
    d.get_log("browser")


def next_evaluation(d):
    """The time (epoch seconds) the worlds page says alpha is evaluated next."""
    el = d.find_elements(By.CSS_SELECTOR, "[data-next]")
    if not el:
        return None
    return datetime.datetime.fromisoformat(el[0].get_attribute("data-next").replace("Z", "+00:00")).timestamp()


def strategy_page(d, st):
    """steady: validation and run records, its promotion flagged, its validation report."""
    check(st["series"] == "4", "the strategy page drew %s series, not 4 (validation and runs, "
          "equity and drawdown)" % st["series"])
    flags = [c.get_attribute("data-markers") for c in d.find_elements(By.CSS_SELECTOR, ".uplot")]
    check(flags == ["1", "1"], "the equity and drawdown charts flag %s promotions or demotions, "
          "not 1 each" % flags)
    clause = d.find_elements(By.CSS_SELECTOR, "[data-gate=reject] [data-clause='return < -0.9']")
    check(clause and clause[0].get_attribute("class") == "pass",
          "the validation report does not show the reject clause as passed")


def replay_page(d, url, shots):
    """The recorded versions match every decision; a candidate that demotes at
    return < 0.3 differs on steady, with both books drawn."""
    d.get(url + "/ui/worlds/alpha/replay")
    wait(d, "the replay page", lambda: status(d)["page"] == "replay" and int(status(d)["ready"] or 0) > 0)
    d.find_element(By.CSS_SELECTOR, "[data-replay=recorded]").click()
    wait(d, "the recorded replay", lambda: d.find_elements(By.CSS_SELECTOR, "[data-differences]"))
    shown = d.find_element(By.CSS_SELECTOR, "[data-differences]")
    check(shown.get_attribute("data-differences") == "0",
          "replaying the recorded policy differs: " + shown.text)
    box = d.find_element(By.CSS_SELECTOR, "textarea[aria-label='candidate policy']")
    check("return >= 0.4" in box.get_property("value"), "the candidate is not the current policy")
    box.clear()
    box.send_keys("gates: {promote: 'return >= 0.4', demote: 'return < 0.3'}\n")
    d.find_element(By.CSS_SELECTOR, "[data-replay=candidate]").click()
    # steady is Live at the runs of 10 days ago and now: demoted at both.
    wait(d, "the candidate replay", lambda: d.find_element(
        By.CSS_SELECTOR, "[data-differences]").get_attribute("data-differences") == "2")
    check(len(d.find_elements(By.CSS_SELECTOR, "#replay-result tr[data-strategy=steady]")) == 2,
          "the differing decision of steady is not listed: " +
          d.find_element(By.ID, "replay-result").text)
    wait(d, "the books' chart", lambda: d.find_elements(By.CSS_SELECTOR, "#replay-equity canvas"))
    st = status(d)
    check(st["series"] == "2", "the replay drew %s series, not 2 (recorded, replayed)" % st["series"])
    check(not st["errors"], "the replay page reported errors: " + str(st))
    errs = console_errors(d)
    check(not errs, "the replay page logged console errors: " + "; ".join(errs))
    d.save_screenshot("%s/console-replay.png" % shots)


def api(url, method, path, token, body):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


def main():
    p = argparse.ArgumentParser()
    for a in ("--url", "--operator", "--viewer", "--run", "--shots"):
        p.add_argument(a, required=True)
    a = p.parse_args()

    d = browser()
    try:
        sign_in(d, a.url, a.operator)
        # The token went once in the sign-in request; the page keeps no copy of it.
        stored = d.execute_script(
            "return JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie")
        check(a.operator not in stored and "qmtl_session" not in stored,
              "the token or the session cookie is readable by the page: " + stored)
        pages = [
            ("worlds", "/ui/", lambda: "Alpha desk" in d.page_source and next_evaluation(d), 0),
            ("world", "/ui/worlds/alpha",
             lambda: d.find_elements(By.CSS_SELECTOR, "rect[data-state=Live]") and
             "Latest evaluation: " in d.page_source, 0),
            ("run", "/ui/worlds/alpha/runs/" + a.run, lambda: "Decisions" in d.page_source, 0),
            ("strategy", "/ui/strategies/steady",
             lambda: len(d.find_elements(By.CSS_SELECTOR, "canvas")) == 2 and
             d.find_elements(By.CSS_SELECTOR, "[data-outcome=passed]"), 2),
        ]
        for name, path, shows, charts in pages:
            d.get(a.url + path)
            wait(d, name + " page", lambda: status(d)["page"] == name and int(status(d)["ready"] or 0) > 0)
            wait(d, name + " page content", shows)
            st = status(d)
            check(not st["errors"], name + " page reported errors: " + str(st))
            if charts:
                check(st["charts"] == str(charts), "%s page drew %s charts, not %d" % (name, st["charts"], charts))
            if name == "worlds":
                shown = next_evaluation(d)
                check(shown and shown > time.time(), "the next evaluation shown is not in the future: %s" % shown)
            if name == "run":
                # steady's demote clause is false: in its favour, so green.
                held = d.find_elements(By.CSS_SELECTOR, "[data-gate=demote] [data-clause]")
                check(held and all(c.get_attribute("class") == "pass" for c in held),
                      "the run page colours a false demote clause as failing")
            if name == "strategy":
                strategy_page(d, st)
            errs = console_errors(d)
            check(not errs, name + " page logged console errors: " + "; ".join(errs))
            d.save_screenshot("%s/console-%s.png" % (a.shots, name))

        replay_page(d, a.url, a.shots)

        # A promotion made through the API reaches the open world page by its event stream.
        d.get(a.url + "/ui/worlds/alpha")
        wait(d, "the world page", lambda: status(d)["page"] == "world" and status(d)["ready"])
        wait(d, "the event stream", lambda: d.find_element(By.ID, "status").get_attribute("data-live") == "1")
        before = int(status(d)["ready"])
        check(api(a.url, "POST", "/strategies/up/promote", a.operator, {"reason": "browser test"}) == 200,
              "the promotion was refused")
        start = time.monotonic()
        shown = wait(d, "the promotion on the open page", lambda: d.find_elements(
            By.CSS_SELECTOR, "rect[data-strategy=up][data-state=Live]"), timeout=2.0)
        took = time.monotonic() - start
        check(shown and took <= 2.0, "the promotion took %.2f s to show" % took)
        check(int(status(d)["ready"]) > before, "the page did not re-render")
        print("promotion shown after %.0f ms" % (took * 1000), flush=True)
        d.save_screenshot("%s/console-world-after-promotion.png" % a.shots)
    finally:
        d.quit()

    # A viewer sees no write control, and a write forged with its session is refused.
    d = browser()
    try:
        sign_in(d, a.url, a.viewer)
        d.get(a.url + "/ui/worlds/alpha")
        wait(d, "the viewer's world page", lambda: status(d)["page"] == "world" and status(d)["ready"])
        wait(d, "the strategies table", lambda: "steady" in d.page_source)
        controls = d.find_elements(By.CSS_SELECTOR, "[data-role=write], [data-action], select[aria-label='world state']")
        check(not controls, "a viewer sees %d write controls" % len(controls))
        for headers in ({"Content-Type": "application/json"},
                        {"Content-Type": "application/json", "X-QMTL-Console": "1"}):
            code = d.execute_async_script(
                "var done = arguments[arguments.length - 1];"
                "fetch('/worlds/alpha/evaluate', {method: 'POST', credentials: 'same-origin',"
                " headers: arguments[0], body: '{}'}).then(function (r) { done(r.status); });", headers)
            check(code == 403, "a viewer's forged write answered %s" % code)
        d.save_screenshot("%s/console-world-viewer.png" % a.shots)
    finally:
        d.quit()
    for f in failures:
        print("failed:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
