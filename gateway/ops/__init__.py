"""Operations: configuration, metrics, logging, the operator CLI and the dev setup, and
the documents people read (the written monthly report: ``report_*``, ``i18n``)."""
