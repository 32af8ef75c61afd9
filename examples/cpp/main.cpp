// atheria_policy: raw observations on stdin, environment actions on stdout.
//
//   atheria_policy torchscript model_jit.pt  OBS_SIZE < observations.txt
//   atheria_policy aoti        model_aoti.pt2 OBS_SIZE < observations.txt
//
// Each input line holds one observation (OBS_SIZE numbers, flattened); each output line holds
// the action for it (flattened). All lines are run as one batch: the exports take [batch, ...].
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/script.h>

#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

torch::Tensor read_observations(std::istream& in, int64_t obs_size) {
  std::vector<float> values;
  std::string line;
  int64_t rows = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    float value = 0.0F;
    int64_t count = 0;
    while (fields >> value) {
      values.push_back(value);
      ++count;
    }
    if (count == 0) continue;
    if (count != obs_size) {
      throw std::runtime_error("line " + std::to_string(rows + 1) + " has " + std::to_string(count) +
                               " numbers, expected " + std::to_string(obs_size));
    }
    ++rows;
  }
  return torch::from_blob(values.data(), {rows, obs_size}, torch::kFloat32).clone();
}

torch::Tensor run_torchscript(const std::string& path, const torch::Tensor& obs) {
  torch::jit::script::Module module = torch::jit::load(path, torch::kCPU);
  module.eval();
  torch::NoGradGuard no_grad;
  return module.forward({obs}).toTensor();
}

torch::Tensor run_aoti(const std::string& path, const torch::Tensor& obs) {
  torch::inductor::AOTIModelPackageLoader loader(path);
  torch::NoGradGuard no_grad;
  return loader.run({obs}).at(0);
}

void write_actions(std::ostream& out, const torch::Tensor& actions) {
  torch::Tensor rows = actions.reshape({actions.size(0), -1}).to(torch::kFloat64).contiguous();
  auto view = rows.accessor<double, 2>();
  out << std::setprecision(9);
  for (int64_t row = 0; row < view.size(0); ++row) {
    for (int64_t column = 0; column < view.size(1); ++column) {
      out << (column ? " " : "") << view[row][column];
    }
    out << '\n';
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: " << argv[0] << " torchscript|aoti FILE OBS_SIZE < observations\n";
    return 2;
  }
  const std::string kind = argv[1];
  const std::string path = argv[2];
  try {
    torch::Tensor obs = read_observations(std::cin, std::stoll(argv[3]));
    torch::Tensor actions;
    if (kind == "torchscript") {
      actions = run_torchscript(path, obs);
    } else if (kind == "aoti") {
      actions = run_aoti(path, obs);
    } else {
      std::cerr << "unknown kind " << kind << ": use torchscript or aoti\n";
      return 2;
    }
    write_actions(std::cout, actions);
  } catch (const std::exception& error) {
    std::cerr << "atheria_policy: " << error.what() << '\n';
    return 1;
  }
  return 0;
}
