"""The viewer's page (``index.html``, ``app.js``, ``view.css``), served by
:mod:`imagezarr.serve` under ``/_view/``: plain JS, nothing fetched from elsewhere."""
