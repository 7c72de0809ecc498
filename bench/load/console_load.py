#!/usr/bin/python3
"""Times the console's world page in headless Chromium (Selenium): from the start
of navigation to the page drawn with every strategy (the page's own
performance.now() when it finishes, #status data-ready-ms).

  console_load.py URL WORLD STRATEGIES [RUNS]
"""
import statistics
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def main():
    url, world, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--no-first-run", "--window-size=1280,1000"):
        opts.add_argument(flag)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    times = []
    try:
        for i in range(runs + 1):
            d.get(url + "/ui/worlds/" + world)
            end = time.monotonic() + 30
            while time.monotonic() < end:
                st = d.find_element(By.ID, "status")
                if st.get_attribute("data-ready"):
                    break
                time.sleep(0.02)
            rows = len(d.find_elements(By.CSS_SELECTOR, "section.card:nth-of-type(1) tbody tr"))
            ms = int(d.find_element(By.ID, "status").get_attribute("data-ready-ms"))
            if i == 0:
                print("first load (cold caches): %d ms, %d rows in the strategies table" % (ms, rows))
                if rows != n:
                    print("the strategies table has %d rows, not %d" % (rows, n))
                    return 1
                continue
            times.append(ms)
    finally:
        d.quit()
    times.sort()
    p50 = statistics.median(times)
    print("world page of %d strategies, %d loads: p50 %d ms, max %d ms" % (n, runs, p50, times[-1]))
    return 0 if p50 <= 1000 else 1


if __name__ == "__main__":
    sys.exit(main())
