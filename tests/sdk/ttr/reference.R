# The reference values of qmtl's indicators, computed by R's TTR (Debian's
# r-cran-ttr) on a bar file: one row per bar, one column per indicator, empty
# where TTR has no value. tests/sdk/ttr_reference_test.cc builds the same
# indicators as a declarative strategy and compares the two.
#
#   Rscript reference.R bars.csv out.csv
suppressMessages(library(TTR))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
H <- d$High; L <- d$Low; C <- d$Close; V <- d$Volume
hlc <- cbind(H, L, C)
bb <- BBands(C, n = 20, sd = 2)  # population deviation
bb_sd_sample <- runSD(C, 20, sample = TRUE)
macd <- MACD(C, nFast = 12, nSlow = 26, nSig = 9, percent = FALSE)
macd_pct <- MACD(C, nFast = 12, nSlow = 26, nSig = 9, percent = TRUE)
st <- stoch(hlc, nFastK = 14, nFastD = 3, nSlowD = 3)
dc <- DonchianChannel(cbind(H, L), n = 20)
out <- data.frame(
  returns = ROC(C, 1, type = "discrete"),
  sma = SMA(C, 20),
  ema = EMA(C, 20),
  rsi = RSI(C, 14),
  rolling_std = runSD(C, 20),
  zscore = (C - runMean(C, 20)) / runSD(C, 20),
  rolling_max = runMax(C, 20),
  rolling_min = runMin(C, 20),
  roc = ROC(C, 10, type = "discrete"),
  roc_log = ROC(C, 10, type = "continuous"),
  bb_upper = bb[, "up"],
  bb_middle = bb[, "mavg"],
  bb_lower = bb[, "dn"],
  bb_pct_b = bb[, "pctB"],
  bb_sample_upper = bb[, "mavg"] + 2 * bb_sd_sample,
  atr = ATR(hlc, n = 14)[, "atr"],
  macd = macd[, "macd"],
  macd_signal = macd[, "signal"],
  macd_histogram = macd[, "macd"] - macd[, "signal"],
  macd_percent = macd_pct[, "macd"],
  stoch_k = 100 * st[, "fastK"],
  stoch_d = 100 * st[, "fastD"],
  donchian_upper = dc[, "high"],
  donchian_middle = dc[, "mid"],
  donchian_lower = dc[, "low"],
  vwap = as.numeric(VWAP(C, V, n = 20))
)
# Every digit a double holds; NA and NaN (TTR's 0 / 0) both as empty.
out[] <- lapply(out, function(x) ifelse(is.na(x), "", sprintf("%.17g", x)))
write.csv(out, args[2], row.names = FALSE, quote = FALSE)
