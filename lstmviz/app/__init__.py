"""The lstmviz desktop application (PySide6 + pyqtgraph).

Only this package imports Qt. Entry point: :func:`lstmviz.app.main.main`. The pieces:

- :mod:`.state` -- :class:`~.state.ViewerState`, the one state (model, input, trace,
  current timestep, selection) every view reads;
- :mod:`.workers` -- long work off the GUI thread;
- :mod:`.main_window` -- :class:`~.main_window.MainWindow` and its extension API;
- the views: :mod:`.heatmaps`, :mod:`.plots`, :mod:`.token_strip`, :mod:`.unit_detail`,
  :mod:`.model_panel`, :mod:`.transport`.
"""
