"""License-utilization analytics over Truto's unified user-directory API.

Everything here works without Streamlit; the pages in ``pages/`` only draw it.
"""
