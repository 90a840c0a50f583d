// Renders `pxbench compare --svg`'s standalone SVG 1.1 throughput chart: the implementation of
// benchmarks/svg_chart.hpp.
#include "svg_chart.hpp"
#include "pxvm/xml.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <sstream>

namespace px::bench {
namespace {

constexpr const char* palette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1",
                                   "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac"};
constexpr double margin = 20;
constexpr double bar_width = 30, bar_gap = 2, group_gap = 26;
constexpr double plot_left = 80, plot_height = 240;
constexpr double char_width = 6.2;  ///< an 11 px sans-serif character, about
constexpr double title_char = 10.0; ///< a 16 px bold one
constexpr double label_char = 6.4;  ///< a 10 px one of a workload name, at most about
constexpr double label_line = 12.0; ///< line height of the workload names

/// A coordinate: "12.5", "40".
std::string num(double v) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f", v);
    std::string s = text;
    if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
    return s == "-0" ? "0" : s;
}

/// Greedy word wrap at spaces; a word longer than `width` gets a line of its own.
std::vector<std::string> wrap(const std::string& text, std::size_t width) {
    std::vector<std::string> lines;
    std::istringstream words(text);
    std::string word, line;
    while (words >> word) {
        if (!line.empty() && line.size() + 1 + word.size() > width) {
            lines.push_back(line);
            line.clear();
        }
        line += (line.empty() ? "" : " ") + word;
    }
    if (!line.empty() || lines.empty()) lines.push_back(line);
    return lines;
}

/// A step of 1, 2, 2.5 or 5 times a power of ten giving about `ticks` ticks up to `max`.
double nice_step(double max, int ticks) {
    const double raw = max / ticks;
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    const double norm = raw / magnitude;
    const double step = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10;
    return step * magnitude;
}

struct Panel {
    Unit unit = Unit::none;
    std::vector<std::string> workloads;
    std::vector<std::vector<std::optional<double>>> values; ///< [workload][run]
    double max = 0;
};

/// The unit of a row: the first run's that has one (TOPS for matmul, GB/s for the rest).
Unit row_unit(const Comparison& c, const std::string& workload) {
    for (const Run& run : c.runs)
        if (const auto it = run.best.find(workload); it != run.best.end())
            if (const Unit unit = unit_of(workload, it->second); unit != Unit::none) return unit;
    return Unit::none;
}

} // namespace

std::string render_svg(const Comparison& c) {
    const std::size_t runs = std::max<std::size_t>(c.runs.size(), 1);
    std::vector<Panel> panels(2);
    panels[0].unit = Unit::tops;
    panels[1].unit = Unit::gbps;
    std::vector<std::string> uncharted;
    for (const std::string& w : c.workloads) {
        const Unit unit = row_unit(c, w);
        if (unit == Unit::none) {
            uncharted.push_back(w);
            continue;
        }
        Panel& panel = panels[unit == Unit::tops ? 0 : 1];
        std::vector<std::optional<double>> values;
        for (const Run& run : c.runs) {
            const auto it = run.best.find(w);
            values.push_back(it == run.best.end() ? std::nullopt : throughput(it->second, unit));
            if (values.back()) panel.max = std::max(panel.max, *values.back());
        }
        panel.workloads.push_back(w);
        panel.values.push_back(std::move(values));
    }
    panels.erase(std::remove_if(panels.begin(), panels.end(),
                                [](const Panel& p) { return p.workloads.empty(); }),
                 panels.end());

    const double group_width = double(runs) * bar_width + double(runs - 1) * bar_gap;
    // Groups are wide enough for the longest word of a workload name (names wrap at spaces).
    std::size_t longest_word = 0;
    for (const Panel& p : panels)
        for (const std::string& w : p.workloads) {
            std::istringstream words(w);
            for (std::string word; words >> word;)
                longest_word = std::max(longest_word, word.size());
        }
    const double pitch = std::max(group_width + group_gap, double(longest_word) * label_char + 10);
    double width = 640;
    for (const Panel& p : panels)
        width = std::max(width, plot_left + double(p.workloads.size()) * pitch + margin);
    std::vector<std::string> legend;
    for (std::size_t k = 0; k < c.runs.size(); ++k) {
        legend.push_back("run " + std::to_string(k + 1) + ": " + c.runs[k].name + " (" +
                         c.runs[k].about + ")");
        width = std::max(width, 2 * margin + 18 + double(legend.back().size()) * char_width);
    }
    for (const std::string& w : uncharted)
        width = std::max(width, 2 * margin + double(w.size() + 2) * char_width);
    std::string title = "pxbench compare:";
    for (std::size_t k = 0; k < c.runs.size(); ++k)
        title += (k ? " vs " : " ") + c.runs[k].name;
    const auto text_columns = [&](double char_w) {
        return std::size_t(std::max(20.0, (width - 2 * margin) / char_w));
    };

    std::ostringstream body;
    double y = margin;
    for (const std::string& line : wrap(title, text_columns(title_char))) {
        y += 20;
        body << "<text x=\"" << num(margin) << "\" y=\"" << num(y)
             << "\" font-size=\"16\" font-weight=\"bold\">" << px::xml_escape(line) << "</text>\n";
    }
    y += 12;
    for (std::size_t k = 0; k < legend.size(); ++k) {
        body << "<rect x=\"" << num(margin) << "\" y=\"" << num(y) << "\" width=\"12\" "
             << "height=\"12\" fill=\"" << palette[k % std::size(palette)] << "\"/>\n"
             << "<text x=\"" << num(margin + 18) << "\" y=\"" << num(y + 10) << "\">"
             << px::xml_escape(legend[k]) << "</text>\n";
        y += 18;
    }
    y += 6;

    const std::size_t label_columns =
        std::size_t(std::max(6.0, std::floor((pitch - 10) / label_char)));
    for (const Panel& p : panels) {
        const std::string unit = unit_name(p.unit);
        y += 22;
        body << "<g>\n<text x=\"" << num(margin) << "\" y=\"" << num(y)
             << "\" font-size=\"13\" font-weight=\"bold\">Throughput in " << px::xml_escape(unit)
             << " (higher is better)</text>\n";
        const double top_y = y + 18, bottom_y = top_y + plot_height;
        const double right = plot_left + double(p.workloads.size()) * pitch;
        const double max = p.max > 0 ? p.max : 1;
        const double step = nice_step(max, 5);
        const double top = std::ceil(max / step - 1e-9) * step;
        for (int i = 0; double(i) * step <= top * (1 + 1e-9); ++i) {
            const double value = double(i) * step;
            const double ty = bottom_y - value / top * plot_height;
            char tick[32];
            std::snprintf(tick, sizeof tick, step >= 1 ? "%.0f" : "%g", value);
            body << "<line x1=\"" << num(plot_left) << "\" y1=\"" << num(ty) << "\" x2=\""
                 << num(right) << "\" y2=\"" << num(ty) << "\" stroke=\"#dddddd\"/>\n"
                 << "<text x=\"" << num(plot_left - 6) << "\" y=\"" << num(ty + 4)
                 << "\" text-anchor=\"end\" font-size=\"10\">" << tick << "</text>\n";
        }
        const double axis_x = margin + 8, axis_y = (top_y + bottom_y) / 2;
        body << "<text x=\"" << num(axis_x) << "\" y=\"" << num(axis_y)
             << "\" text-anchor=\"middle\" transform=\"rotate(-90 " << num(axis_x) << " "
             << num(axis_y) << ")\">" << px::xml_escape(unit) << "</text>\n"
             << "<line x1=\"" << num(plot_left) << "\" y1=\"" << num(top_y) << "\" x2=\""
             << num(plot_left) << "\" y2=\"" << num(bottom_y) << "\" stroke=\"#333333\"/>\n"
             << "<line x1=\"" << num(plot_left) << "\" y1=\"" << num(bottom_y) << "\" x2=\""
             << num(right) << "\" y2=\"" << num(bottom_y) << "\" stroke=\"#333333\"/>\n";
        std::size_t lines = 1;
        for (std::size_t g = 0; g < p.workloads.size(); ++g) {
            const double gx = plot_left + (pitch - group_width) / 2 + double(g) * pitch;
            body << "<g><title>" << px::xml_escape(p.workloads[g]) << "</title>\n";
            for (std::size_t k = 0; k < p.values[g].size(); ++k) {
                const double x = gx + double(k) * (bar_width + bar_gap);
                const double cx = x + bar_width / 2;
                const auto& value = p.values[g][k];
                if (!value) {
                    body << "<text x=\"" << num(cx) << "\" y=\"" << num(bottom_y - 4)
                         << "\" text-anchor=\"middle\" font-size=\"10\">-</text>\n";
                    continue;
                }
                const Best& best = c.runs[k].best.at(p.workloads[g]);
                const double h = *value / top * plot_height;
                const std::string figure = format_throughput(*value);
                body << "<rect x=\"" << num(x) << "\" y=\"" << num(bottom_y - h) << "\" width=\""
                     << num(bar_width) << "\" height=\"" << num(h) << "\" fill=\""
                     << palette[k % std::size(palette)] << "\"><title>"
                     << px::xml_escape("run " + std::to_string(k + 1) + ", " + p.workloads[g] +
                                       ": " + figure + " " + unit + ", " +
                                       format_ms(best.median_ms) + " ms" +
                                       (best.how.empty() ? "" : " (" + best.how + ")"))
                     << "</title></rect>\n"
                     << "<text x=\"" << num(cx) << "\" y=\"" << num(bottom_y - h - 3)
                     << "\" text-anchor=\"middle\" font-size=\"9\">" << px::xml_escape(figure)
                     << "</text>\n";
            }
            const std::vector<std::string> name = wrap(p.workloads[g], label_columns);
            lines = std::max(lines, name.size());
            const double lx = gx + group_width / 2;
            body << "<text x=\"" << num(lx) << "\" y=\"" << num(bottom_y + 14)
                 << "\" text-anchor=\"middle\" font-size=\"10\">";
            for (std::size_t i = 0; i < name.size(); ++i)
                body << "<tspan x=\"" << num(lx) << "\" dy=\"" << (i ? num(label_line) : "0")
                     << "\">" << px::xml_escape(name[i]) << "</tspan>";
            body << "</text>\n</g>\n";
        }
        body << "</g>\n";
        y = bottom_y + 14 + double(lines) * label_line + 8;
    }

    std::vector<std::string> notes;
    if (panels.empty())
        notes.push_back("Nothing to chart: no workload has a throughput.");
    else
        notes.push_back("Bar height: the throughput of each run's best path or variant (lowest "
                        "median GPU time); higher is better; a dash: not in that run.");
    if (!uncharted.empty()) { // one line each, so that every name stays whole
        notes.push_back("Not charted (no TOPS or GB/s):");
        for (const std::string& w : uncharted)
            notes.push_back("- " + w);
    }
    y += 4;
    for (const std::string& note : notes)
        for (const std::string& line : note.rfind("- ", 0) == 0
                                           ? std::vector<std::string>{note}
                                           : wrap(note, text_columns(char_width))) {
            y += 15;
            body << "<text x=\"" << num(margin) << "\" y=\"" << num(y) << "\" font-size=\"11\">"
                 << px::xml_escape(line) << "</text>\n";
        }
    const double height = y + margin;

    std::ostringstream svg;
    svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << num(width)
        << "\" height=\"" << num(height) << "\" viewBox=\"0 0 " << num(width) << " " << num(height)
        << "\" font-family=\"sans-serif\" font-size=\"11\">\n"
        << "<title>" << px::xml_escape(title) << "</title>\n"
        << "<rect x=\"0\" y=\"0\" width=\"" << num(width) << "\" height=\"" << num(height)
        << "\" fill=\"#ffffff\"/>\n"
        << body.str() << "</svg>\n";
    return svg.str();
}

Result<std::string> svg_chart(const std::vector<std::string>& paths) {
    auto comparison = load_comparison(paths);
    if (!comparison) return comparison.error();
    return render_svg(*comparison);
}

} // namespace px::bench
