"""The run use cases, framework-free: admission → run → settlement (`execution`), the
Open Responses turn (`turn`), its history (`history`), background runs (`background`)
and the media-URL guard (`url_guard`). `http/` and `web/` call them."""
