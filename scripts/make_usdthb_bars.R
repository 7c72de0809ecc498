# Hourly bars of USD/THB from the Reuters quotes of June 1997 that R's fBasics
# package ships (`usdthb`, GPL-2+; Debian r-cran-fbasics), written to
# examples/data/usdthb_hourly.csv. The bars are of the mid price (bid + ask) / 2;
# volume is the number of quotes in the hour, spread the mean quoted spread.
# Hours without quotes have no bar (gaps are not filled).
#
#   apt install r-cran-fbasics && Rscript scripts/make_usdthb_bars.R
suppressMessages(library(fBasics))
data(usdthb)
q <- usdthb
q <- q[q$BID > 0 & q$ASK >= q$BID, ]
stamp <- sprintf("%.0f", q$XDATE)  # YYYYMMDDhhmm
hour <- substr(stamp, 1, 10)
mid <- (q$BID + q$ASK) / 2
spread <- q$ASK - q$BID
bars <- do.call(rbind, lapply(split(seq_along(mid), hour), function(i) {
  data.frame(hour = hour[i[1]], open = mid[i[1]], high = max(mid[i]), low = min(mid[i]),
             close = mid[i[length(i)]], volume = length(i), spread = mean(spread[i]))
}))
bars <- bars[order(bars$hour), ]
ts <- sprintf("%s-%s-%sT%s:00:00Z", substr(bars$hour, 1, 4), substr(bars$hour, 5, 6),
              substr(bars$hour, 7, 8), substr(bars$hour, 9, 10))
out <- data.frame(timestamp = ts, open = bars$open, high = bars$high, low = bars$low,
                  close = bars$close, volume = bars$volume, spread = round(bars$spread, 6))
write.csv(out, "examples/data/usdthb_hourly.csv", row.names = FALSE, quote = FALSE)
cat(nrow(out), "bars,", nrow(q), "quotes\n")
