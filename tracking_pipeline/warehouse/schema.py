"""The warehouse tables (CONTRACT §3), declared once for every backend."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Logical column types; each backend maps them to its own SQL types.
DATE, TEXT, FLOAT, INT, BIGINT, BOOL, JSON, TIMESTAMP = (
    "date", "text", "float", "int", "bigint", "bool", "json", "timestamp",
)


@dataclass(frozen=True)
class Table:
    """A table: ordered columns with logical types, the unique key, and the date column partitions write by."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    date_column: str | None = None

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]

    def column_type(self, column: str) -> str:
        return dict(self.columns)[column]

    def pick(self, columns: Sequence[str] | None = None) -> list[str]:
        """The declared columns named in `columns` (all when None), in table order; a name the table does not
        declare is an error, not a column silently left out."""
        if columns is None:
            return self.column_names
        unknown = sorted(set(columns) - set(self.column_names))
        if unknown:
            raise ValueError(f"{self.name} has no column {', '.join(unknown)}")
        return [c for c in self.column_names if c in columns]


RECURSIVE_INDICATORS = ("ema_12", "ema_26", "macd_signal", "atr_14", "rsi_gain", "rsi_loss")
"""The recursive averages behind `asset_performance_metrics` whose state `asset_indicator_state` keeps (with
OBV's running sum), so a day continues from the day before instead of from the first stored price."""


def _t(name: str, columns: str, key: str, date_column: str | None = None) -> Table:
    cols = tuple(tuple(part.split(":")) for part in columns.split())
    return Table(name, cols, tuple(key.split()), date_column)  # type: ignore[arg-type]


TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        _t("price_data",
           "trade_date:date ticker:text open:float high:float low:float close:float adj_close:float volume:float",
           "trade_date ticker", "trade_date"),
        _t("market_features",
           "trade_date:date market_ticker:text close:float sma_50:float sma_200:float rsi_14:float "
           "momentum_63:float momentum_126:float realized_vol_21:float drawdown:float vix_close:float "
           "features:json",
           "trade_date", "trade_date"),
        _t("portfolio_definitions",
           "portfolio_id:bigint name:text description:text source:text start_date:date initial_nav:float "
           "benchmark:text config:json is_active:bool created_at:timestamp updated_at:timestamp",
           "portfolio_id"),
        _t("portfolio_holdings",
           "portfolio_id:bigint effective_date:date ticker:text weight:float",
           "portfolio_id effective_date ticker"),
        _t("position_market_betas",
           "ticker:text calc_date:date window_days:int method:text market_index:text beta:float alpha:float "
           "r_squared:float std_error:float p_value:float observations:int is_significant:bool",
           "ticker calc_date window_days method market_index", "calc_date"),
        _t("overlay_signals",
           "trade_date:date model:text target_allocation:float actual_allocation:float trade_required:bool "
           "signals:json impacts:json",
           "trade_date model", "trade_date"),
        _t("portfolio_daily_nav",
           "portfolio_id:bigint trade_date:date variant:text nav:float daily_return:float "
           "cumulative_return:float equity_allocation:float cash_allocation:float",
           "portfolio_id trade_date variant", "trade_date"),
        _t("portfolio_snapshots",
           "portfolio_id:bigint snapshot_date:date market_beta_weighted:float market_beta_r_squared:float "
           "market_beta_observations:int market_beta_direct:float sector_exposure:json hhi:float "
           "effective_num_positions:float top_3_concentration:float top_10_concentration:float "
           "realized_volatility_21d:float realized_volatility_63d:float expected_volatility_21d:float "
           "volatility_trend:text volatility_percentile:float max_allocation_drift:float "
           "max_drift_ticker:text rebalance_recommended:bool expected_volatility_filtered:bool risk_level:text "
           "sector_positions:json largest_overweight_sector:text largest_overweight:float "
           "largest_underweight_sector:text largest_underweight:float unclassified_tickers:json "
           "top_3_positions:json top_10_positions:json bounds_breaches:json",
           "portfolio_id snapshot_date", "snapshot_date"),
        _t("portfolio_stress_tests",
           "portfolio_id:bigint snapshot_date:date scenario:text market_shock:float expected_return:float "
           "expected_pnl:float",
           "portfolio_id snapshot_date scenario", "snapshot_date"),
        _t("portfolio_metrics",
           "portfolio_id:bigint variant:text period_type:text period_start:date period_end:date "
           "total_return:float sharpe_ratio:float sortino_ratio:float cagr:float max_drawdown:float "
           "calmar_ratio:float volatility:float win_rate:float var_95:float cvar_95:float beta:float "
           "alpha:float tracking_error:float information_ratio:float var_99:float cvar_99:float var_95_1m:float "
           "treynor_ratio:float current_drawdown:float max_drawdown_start:date max_drawdown_trough:date "
           "max_drawdown_recovery:date max_drawdown_duration:int current_drawdown_duration:int",
           "portfolio_id variant period_type period_start"),
        _t("portfolio_rolling_metrics",
           "portfolio_id:bigint trade_date:date variant:text sharpe_63:float sortino_63:float volatility_63:float "
           "beta_63:float max_drawdown_63:float sharpe_252:float sortino_252:float volatility_252:float "
           "beta_252:float max_drawdown_252:float",
           "portfolio_id trade_date variant", "trade_date"),
        _t("rebalancing_events",
           "portfolio_id:bigint event_date:date event_type:text nav:float max_drift:float pre_weights:json "
           "post_weights:json trades:json turnover:float traded_value:float cost_bps:float estimated_cost:float",
           "portfolio_id event_date", "event_date"),
        _t("asset_performance_metrics",
           "ticker:text trade_date:date sma_20:float sma_50:float sma_200:float ema_12:float ema_26:float "
           "rsi_14:float macd:float macd_signal:float bollinger_mid:float bollinger_upper:float "
           "bollinger_lower:float atr_14:float stoch_k:float stoch_d:float obv:float return_1m:float "
           "return_3m:float return_6m:float return_1y:float return_3y:float return_5y:float "
           "volatility_1y:float beta_1y:float sharpe_1y:float",
           "ticker trade_date", "trade_date"),
        _t("asset_indicator_state",
           "as_of:date ticker:text " + " ".join(f"{name}:float {name}_seen:date {name}_count:int"
                                                for name in RECURSIVE_INDICATORS) + " obv:float",
           "as_of ticker", "as_of"),
        _t("asset_correlations",
           "calc_date:date window_days:int ticker_a:text ticker_b:text correlation:float p_value:float "
           "observations:int",
           "calc_date window_days ticker_a ticker_b", "calc_date"),
        _t("input_fingerprints",
           "asset:text part:text calc_date:date fingerprint:text row_count:int",
           "asset part calc_date"),
        _t("alerts",
           "alert_id:text created_at:timestamp run_id:text job_name:text step_key:text error:text",
           "alert_id"),
        # Trade and strategy analytics (seeds 001 and 004; docs/strategies.md).
        _t("routing_decisions",
           "decision_id:text symbol:text selected_strategy:text classification:text confidence:float reason:text "
           "timestamp:timestamp decision_date:date source_file:text",
           "decision_id", "decision_date"),
        _t("trade_tracking",
           "trade_id:text symbol:text strategy:text classification:text entry_date:date entry_price:float "
           "exit_date:date exit_price:float quantity:float profit_loss:float profit_loss_pct:float hold_days:int "
           "exit_reason:text routing_confidence:float was_profitable:bool is_open:bool mark_date:date "
           "mark_price:float status_date:date decision_id:text decision_date:date entry_delay_days:int "
           "timing_cost:float timing_cost_amount:float source_file:text",
           "trade_id", "status_date"),
        _t("strategy_metrics",
           "strategy:text stock_type:text period_type:text period_start:date period_end:date total_trades:int "
           "winning_trades:int losing_trades:int win_rate:float avg_profit:float avg_profit_winners:float "
           "avg_loss_losers:float total_return:float total_profit_loss:float max_drawdown:float "
           "avg_hold_days:float sharpe_ratio:float profit_factor:float confidence_accuracy:float status:text "
           "updated_at:timestamp",
           "strategy stock_type period_type period_end", "period_end"),
        _t("trade_outcomes",
           "as_of_date:date period_type:text period_start:date closed_trades:int win_rate:float avg_return:float "
           "explosive_rate:float confidence_accuracy:float brier_score:float timed_trades:int "
           "avg_entry_delay_days:float avg_timing_cost:float timing_cost_amount:float timing_score:float "
           "baseline_win_rate:float baseline_avg_return:float baseline_explosive_rate:float "
           "progress_win_rate:float progress_avg_return:float progress_explosive_rate:float "
           "recovery_progress:float performance_gap:float status:text status_reasons:text",
           "as_of_date period_type", "as_of_date"),
        _t("confidence_calibration",
           "as_of_date:date period_type:text band:text period_start:date trades:int winners:int win_rate:float "
           "mean_confidence:float calibration_gap:float correct:int accuracy:float brier_score:float",
           "as_of_date period_type band", "as_of_date"),
        _t("volume_spike_candidates",
           "trade_date:date ticker:text price:float volume:float avg_volume:float volume_multiple:float "
           "best_pattern:text similarity:float similarities:json",
           "trade_date ticker", "trade_date"),
        _t("system_health",
           "checked_at:timestamp component:text status:text value:float detail:text",
           "checked_at component"),
    ]
}
