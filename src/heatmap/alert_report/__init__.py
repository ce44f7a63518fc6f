"""``heat alerts report``: how noisy the alerts of recorded books are, and how early they warn;
``heat alerts calibrate``: the thresholds per desk that page least and still warn.

- :mod:`~heatmap.alert_report.noise`: firings per book and day, episode lengths and
  re-fires, from alert transitions alone (pure);
- :mod:`~heatmap.alert_report.lead`: the lead time of a book's first critical alert
  before an event (pure);
- :mod:`~heatmap.alert_report.events`: the liquidations and near misses ``heat compare``
  finds for the same books at given leverages (its code, run once);
- :mod:`~heatmap.alert_report.model`: the report as msgspec structs (the JSON output);
- :mod:`~heatmap.alert_report.table`: the terminal tables;
- :mod:`~heatmap.alert_report.calibrate`: a grid of candidate thresholds judged on the
  frames of one compare run, the suggestion per desk and the file that sets it;
  :mod:`~heatmap.alert_report.calibrate_table` prints it.
"""
