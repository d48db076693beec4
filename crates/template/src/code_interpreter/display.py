"""Run by every Python kernel of the code-interpreter template at start
(IPKernelApp.exec_files): adds the display formats E2B's SDKs read.

- `e2b/data`: a pandas DataFrame as {column: [values]} (timestamps as ISO
  8601 text), beside its HTML table.
- `e2b/chart`: a matplotlib figure as structured chart data (type, title,
  axes, elements), made by the `e2b_charts` package, beside its PNG.
- `application/json`: a dict or list result as JSON (NumPy values
  included), when it can be serialized.

A formatter checks `sys.modules` first, so an ordinary result never pays
for importing pandas or matplotlib. Everything is defined inside one
function that deletes itself: the user's namespace stays empty.
"""


def _warren_install_formats():
    import sys

    from IPython import get_ipython
    from IPython.core.formatters import BaseFormatter, JSONFormatter
    from traitlets import ObjectName, Unicode

    class DataFrameFormatter(BaseFormatter):
        format_type = Unicode("e2b/data")
        print_method = ObjectName("_repr_e2b_data_")
        _return_type = (dict,)

        def __call__(self, obj):
            pandas = sys.modules.get("pandas")
            if pandas is None or not isinstance(obj, pandas.DataFrame):
                return super().__call__(obj)
            columns = obj.to_dict(orient="list")
            return {
                str(name): [
                    v.isoformat() if isinstance(v, pandas.Timestamp) else v
                    for v in values
                ]
                for name, values in columns.items()
            }

    class ChartFormatter(BaseFormatter):
        format_type = Unicode("e2b/chart")
        print_method = ObjectName("_repr_e2b_chart_")
        _return_type = (dict,)

        def __call__(self, obj):
            if "matplotlib" not in sys.modules:
                return super().__call__(obj)
            from matplotlib.figure import Figure

            if not isinstance(obj, Figure):
                return super().__call__(obj)
            try:
                from e2b_charts import chart_figure_to_dict

                return chart_figure_to_dict(obj)
            except Exception:
                # A figure the extractor does not understand still
                # displays as its PNG.
                return None

    class ContainerJSONFormatter(JSONFormatter):
        def __call__(self, obj):
            if isinstance(obj, (dict, list)):
                try:
                    import orjson

                    options = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
                    return orjson.loads(orjson.dumps(obj, option=options)), {
                        "expanded": True
                    }
                except TypeError:
                    pass
            return super().__call__(obj)

    shell = get_ipython()
    if shell is None:
        return
    formatters = shell.display_formatter.formatters
    parent = shell.display_formatter
    formatters["e2b/data"] = DataFrameFormatter(parent=parent)
    formatters["e2b/chart"] = ChartFormatter(parent=parent)
    formatters["application/json"] = ContainerJSONFormatter(parent=parent)


_warren_install_formats()
del _warren_install_formats
