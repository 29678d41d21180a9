"""The Streamlit side of the app: what the pages share (sidebar, uploads, results, caches).

`classifier` never imports Streamlit; this package is where the two meet. Pages in
`pages/` read top to bottom and call in here.
"""
