"""``/docs`` of both APIs in a real browser without network (issue 14, item 2).

Headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven by Selenium opens the
docs of the real gunicorn processes with every address but 127.0.0.1 unreachable: a dead
proxy and host-resolver rules that resolve no other name. It must see the operations, the
page must load nothing from elsewhere and break no rule of its Content-Security-Policy, and a
"Try it out" call with the session's API key must succeed (200 on the query API, 202 on the
command API). Skipped, saying why, when Chromium or its driver is not installed.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from support.auth import TEST_API_KEY
from support.processes import free_port
from support.stack import Stack

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="headless Chromium is not installed: the /docs browser test needs the Debian "
        "packages chromium and chromium-driver (apt-get install -y chromium chromium-driver)",
    ),
]

WAIT_S = 30
#: Records the page's CSP violations before any of its scripts runs.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="chromium-")
    dead_proxy = free_port()  # nothing listens there: any request through it fails
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--proxy-server=http://127.0.0.1:{dead_proxy}",
        "--proxy-bypass-list=127.0.0.1",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--window-size=1280,2000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=DriverService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_S)
    driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_CSP_VIOLATIONS}
    )
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_docs(driver: Any, base_url: str) -> dict[str, set[str]]:
    """Open ``base_url/docs`` and wait for its operations; returns path -> methods shown."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base_url}/docs")
    WebDriverWait(driver, WAIT_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock .opblock-summary-path")
    )
    operations: dict[str, set[str]] = {}
    for block in driver.find_elements(By.CSS_SELECTOR, ".opblock"):
        path = block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute(
            "data-path"
        )
        method = block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text
        operations.setdefault(path, set()).add(method.lower())
    return operations


def authorize(driver: Any, api_key: str) -> None:
    """Enter ``api_key`` in Swagger UI's "Authorize" dialog (the bearer scheme)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize").click()
    dialog = WebDriverWait(driver, WAIT_S).until(
        lambda d: d.find_element(By.CSS_SELECTOR, ".modal-ux")
    )
    dialog.find_element(By.CSS_SELECTOR, "input").send_keys(api_key)
    dialog.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper .authorize").click()
    dialog.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper .btn-done").click()


def try_it_out(driver: Any, method: str, path: str, body: dict[str, Any] | None = None) -> str:
    """Expand ``method path``, press "Try it out" (with ``body`` as the JSON request body when
    given) and "Execute"; returns the status code Swagger UI shows for the live answer."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    block = next(
        candidate
        for candidate in driver.find_elements(By.CSS_SELECTOR, f".opblock.opblock-{method}")
        if candidate.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute(
            "data-path"
        )
        == path
    )
    block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    WebDriverWait(driver, WAIT_S).until(
        lambda _: block.find_elements(By.CSS_SELECTOR, ".try-out__btn")
    )[0].click()
    if body is not None:
        editor = block.find_element(By.CSS_SELECTOR, "textarea.body-param__text")
        editor.send_keys(Keys.CONTROL, "a")
        editor.send_keys(Keys.DELETE)
        editor.send_keys(json.dumps(body))
    block.find_element(By.CSS_SELECTOR, ".execute").click()
    status = WebDriverWait(driver, WAIT_S).until(
        lambda _: block.find_elements(
            By.CSS_SELECTOR, ".live-responses-table .response .response-col_status"
        )
    )
    return str(status[0].text.strip())


def loaded_urls(driver: Any) -> list[str]:
    """Every URL the page fetched (Resource Timing), the page itself included."""
    entries = driver.execute_script(
        "return performance.getEntriesByType('navigation')"
        ".concat(performance.getEntriesByType('resource')).map(e => e.name)"
    )
    return [str(url) for url in entries]


def assert_offline_and_within_policy(driver: Any, base_url: str) -> None:
    urls = loaded_urls(driver)
    assert any(url.endswith("swagger-ui-bundle.js") for url in urls), urls
    assert all(url.startswith(f"{base_url}/") for url in urls), urls
    assert driver.execute_script("return window.__cspViolations") == []
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []


def test_command_api_docs_work_offline_and_try_it_out_is_accepted(
    browser: Any, stack: Stack
) -> None:
    operations = open_docs(browser, stack.command_url)

    assert {"post"} <= operations["/v1/contacts"]
    assert {"put", "patch", "delete"} <= operations["/v1/contacts/{contact_id}"]
    authorize(browser, TEST_API_KEY)
    status = try_it_out(
        browser, "post", "/v1/contacts", {"first_name": "Docs", "email": "docs@example.com"}
    )
    assert status == "202"
    assert_offline_and_within_policy(browser, stack.command_url)


def test_query_api_docs_work_offline_and_try_it_out_answers_200(browser: Any, stack: Stack) -> None:
    operations = open_docs(browser, stack.query_url)

    assert {"get"} <= operations["/v1/contacts"]
    assert {"get"} <= operations["/v1/operations/{operation_id}"]
    authorize(browser, TEST_API_KEY)
    assert try_it_out(browser, "get", "/v1/contacts") == "200"
    assert_offline_and_within_policy(browser, stack.query_url)
