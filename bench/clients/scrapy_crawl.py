"""Scrapy's CrawlSpider as the crawl benchmark runs it: every link and requisite of the
start URL's host, each response saved under OUT as wget -nH names it.

python -m scrapy runspider scrapy_crawl.py -a start=URL -a out=DIR \
        -s CONCURRENT_REQUESTS=N -s CONCURRENT_REQUESTS_PER_DOMAIN=N

The rules follow what `wget -r -np -p` follows: <a>/<area> href, <link> href,
<img>/<script>/<iframe>/<frame> src, nothing filtered by extension (Scrapy drops
images, CSS and JS links by default). Scrapy does not read CSS, so images named only
in stylesheets are not fetched.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote, urlsplit

from scrapy.linkextractors import LinkExtractor
from scrapy.spiders import CrawlSpider, Rule


class MirrorSpider(CrawlSpider):
    name = "mirror"
    custom_settings = {
        "ROBOTSTXT_OBEY": True,
        "LOG_LEVEL": "ERROR",
        "TELNETCONSOLE_ENABLED": False,
        "DOWNLOAD_DELAY": 0,
        "AUTOTHROTTLE_ENABLED": False,
        "DEPTH_LIMIT": 0,
        "RETRY_ENABLED": False,
        "COOKIES_ENABLED": False,
        "HTTPCACHE_ENABLED": False,
    }

    def __init__(self, start: str, out: str, **kwargs) -> None:
        parts = urlsplit(start)
        origin = f"{parts.scheme}://{parts.netloc}/"
        self.start_urls = [start]
        self.out = out
        self.saved = 0
        extractor = LinkExtractor(
            # allow_domains compares the netloc with its port, so it refuses 127.0.0.1:PORT
            allow=[re.escape(origin)],
            tags=("a", "area", "link", "img", "script", "iframe", "frame"),
            attrs=("href", "src"),
            deny_extensions=[],
        )
        self.rules = (Rule(extractor, callback="save", follow=True),)
        super().__init__(**kwargs)

    def parse_start_url(self, response, **kwargs):
        self.save(response)
        return []

    def save(self, response) -> None:
        if response.status != 200:
            return
        parts = urlsplit(response.url)
        path = unquote(parts.path)
        if path.endswith("/"):
            path += "index.html"
        if parts.query:
            path += "?" + parts.query
        target = os.path.join(self.out, path.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(response.body)
        self.saved += 1
