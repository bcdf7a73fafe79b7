# Latency of one read (best repetition, ns; error bars: standard deviation across
# repetitions): all 10,000 keys and a hot set of 64, each built at -O2 and at -O3.
# Called by report.sh:
#   gnuplot -e "datafile='...'; outfile='...'" read_latency.gp
if (!exists("datafile")) datafile = 'read_latency.dat'
if (!exists("outfile")) outfile = 'read_latency.png'

set terminal pngcairo size 1440,680 font "DejaVu Sans,11" noenhanced
set output outfile
set title "yuxi-config read latency, one thread (best of the repetitions; error bars: std. dev.; lower is better)"
set ylabel "ns per read"
set datafile missing "?"
set style data histogram
set style histogram errorbars gap 1.5 lw 1
set style fill solid 0.85 border -1
set boxwidth 0.95
set xtics rotate by -25 scale 0 nomirror
set ytics nomirror
set grid ytics lc rgb "#dddddd"
set key top left
set yrange [0:*]
set offsets 0, 0, graph 0.08, 0
set bmargin 9
set rmargin 10

# Clusters of 4 bars: bar j (0-3) of cluster i is centred at i + (j - 1.5) / 5.5.
plot datafile using 2:3:xtic(1) title "all 10,000 keys (random order), -O2" lc rgb "#3b75af", \
     '' using 4:5 title "all 10,000 keys, -O3" lc rgb "#9ec3e6", \
     '' using 6:7 title "hot set of 64 keys, -O2" lc rgb "#ef8636", \
     '' using 8:9 title "hot set of 64 keys, -O3" lc rgb "#f7c08f", \
     '' using ($0 - 1.5 / 5.5):($2 + $3):(sprintf("%.0f", $2)) with labels offset 0,0.7 font ",8" notitle, \
     '' using ($0 - 0.5 / 5.5):($4 + $5):(sprintf("%.0f", $4)) with labels offset 0,0.7 font ",8" notitle, \
     '' using ($0 + 0.5 / 5.5):($6 + $7):(sprintf("%.0f", $6)) with labels offset 0,0.7 font ",8" notitle, \
     '' using ($0 + 1.5 / 5.5):($8 + $9):(sprintf("%.0f", $8)) with labels offset 0,0.7 font ",8" notitle
