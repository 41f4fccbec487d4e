// A libcurl transport for the core (tools, dedicated servers, tests). Link with -lcurl; call
// curl_global_init(CURL_GLOBAL_DEFAULT) once at start.
#pragma once

#include <curl/curl.h>

#include "contractc_runtime.hpp"

namespace __NAMESPACE__ {
namespace rt {

class CurlTransport : public Transport {
public:
    /// `timeout_ms` bounds each request (connect and transfer).
    explicit CurlTransport(long timeout_ms = 30000) : timeout_ms_(timeout_ms) {}

    HttpAnswer send(const std::string& method, const std::string& url,
                    const std::vector<std::pair<std::string, std::string>>& headers, const std::string& content_type,
                    const std::string& body) override {
        CURL* curl = curl_easy_init();
        if (curl == nullptr) throw NetworkError("curl_easy_init failed");
        struct curl_slist* list = nullptr;
        for (const auto& h : headers) list = curl_slist_append(list, (h.first + ": " + h.second).c_str());
        if (!content_type.empty()) list = curl_slist_append(list, ("Content-Type: " + content_type).c_str());
        std::string answer;
        curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms_);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &CurlTransport::collect);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
        if (method == "POST") {
            curl_easy_setopt(curl, CURLOPT_POST, 1L);
            curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
            curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
        }
        const CURLcode code = curl_easy_perform(curl);
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(list);
        curl_easy_cleanup(curl);
        if (code != CURLE_OK) throw NetworkError(curl_easy_strerror(code));
        return HttpAnswer{static_cast<int>(status), answer};
    }

private:
    long timeout_ms_;

    static size_t collect(char* data, size_t size, size_t count, void* target) {
        static_cast<std::string*>(target)->append(data, size * count);
        return size * count;
    }
};

}  // namespace rt
}  // namespace __NAMESPACE__
