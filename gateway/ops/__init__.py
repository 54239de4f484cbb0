"""Operations: configuration, metrics, logging, the operator CLI and the dev setup."""
