// Decoded<T>: a value, or the reason it could not be had, for every decoder of outside
// input in the injector (AdmissionReviews, pods, annotations): below the event loop a
// refusal is an ordinary result, never an exception.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace yuxi::config::injector {

template <class T>
class [[nodiscard]] Decoded {
  public:
    Decoded(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit
    static Decoded refused(std::string reason) {
        return Decoded(std::in_place_index<1>, std::move(reason));
    }

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &std::get<0>(v_); }
    const T* operator->() const { return &std::get<0>(v_); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    // Why it was refused; empty when ok().
    const std::string& reason() const noexcept {
        static const std::string none;
        return ok() ? none : std::get<1>(v_);
    }

  private:
    template <std::size_t I, class... A>
    explicit Decoded(std::in_place_index_t<I> i, A&&... a) : v_(i, std::forward<A>(a)...) {}

    std::variant<T, std::string> v_;
};

// A refusal on its way into a Decoded<T> of any T: `return refuse("why");`.
struct Refused {
    std::string reason;
    template <class T>
    operator Decoded<T>() && {  // NOLINT: implicit, so that `return refuse(...)` reads plainly
        return Decoded<T>::refused(std::move(reason));
    }
};

inline Refused refuse(std::string reason) {
    return Refused{std::move(reason)};
}

}  // namespace yuxi::config::injector
