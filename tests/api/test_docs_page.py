"""``/docs`` is served with Swagger UI's files from the service itself: nothing from outside."""

from __future__ import annotations

import re
from urllib.parse import urlparse


def test_docs_page_loads_nothing_from_outside(client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert len(urls) >= 4  # style, icon, bundle, preset
    for url in urls:
        assert not urlparse(url).netloc and url.startswith("/"), url
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.data) > 500, url
    assert "SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").get_data(
        as_text=True
    )
    spec_url = re.search(r'url:\s*"([^"]+)"', html).group(1)
    assert client.get(spec_url).json["info"]["title"] == "Sighting"
    assert client.get("/docs/assets/../../api/__init__.py").status_code == 404
