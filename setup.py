"""Packaging: dagster and its libraries pinned to one matching release (1.13.27 / 0.29.27)."""

from setuptools import find_packages, setup

setup(
    name="tracking_pipeline",
    version="0.1.0",
    description="Dagster pipeline tracking investment portfolios: NAV per risk-overlay variant, risk and metrics.",
    packages=find_packages(exclude=["tracking_pipeline_tests*"]),
    package_data={"tracking_pipeline": ["demo_lake/**/*", "demo_lake/*", "reporting/templates/*",
                                        "reporting/templates/performance/*"]},
    include_package_data=True,
    python_requires=">=3.11,<3.14",
    install_requires=[
        "dagster==1.13.27",
        "dagster-webserver==1.13.27",
        "dagster-aws==0.29.27",
        "dagster-postgres==0.29.27",
        "dagster-celery==0.29.27",
        "celery==5.7.0",
        "redis==7.1.0",
        "pandas==3.1.1",
        "polars==2.1.0",
        "pyarrow==26.0.1",
        "numpy==2.4.6",
        "scipy==1.17.1",
        "statsmodels==0.15.0",
        "duckdb==2.0.0",
        "exchange_calendars==4.13.2",
        "boto3==1.44.5",
        "psycopg2-binary==2.9.13",
        "PyYAML==6.0.3",
        "requests==2.34.2",
        "Jinja2==3.1.6",
        "plotly==7.1.0",
        "streamlit==1.67.0",
    ],
    extras_require={
        "dev": [
            "pytest==9.2.0",
            "pytest-xdist==3.8.0",
            "moto[server]==5.2.5",
            "empyrical-reloaded==0.7.1",
            "quantstats==0.0.86",
            "aiosmtpd==1.4.6",
        ],
    },
)
