"""Entry point: the pages and the HTTP API, served on one port by `streamlit run streamlit_app.py`.

Streamlit finds `app` below and serves it: this file is first imported as a module (the
server: `st.App` with the API's routes), and then run as the script of every page visit,
where `__name__` is "__main__": page configuration and navigation (ui/entry.py); each page
lives in pages/.
"""

import streamlit as st

if __name__ == "__main__":  # a visit's script run
    from ui import entry

    entry.main()
else:  # the server, imported once
    from api import server

    app = st.App(__file__, routes=server.routes(), lifespan=server.lifespan)
