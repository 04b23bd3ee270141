"""What crawl mode adds to fetching: links found in pages, URL scope, robots.txt answers.

Nothing here touches a socket: the crawl frontier feeds what these modules find
back into the same dispatcher ``fetch`` uses.
"""
